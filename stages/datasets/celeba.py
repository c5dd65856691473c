"""CelebA ingestion: the aligned faces, their 40 attributes and identities, into uint8 arrays.

Raw layout (data/raw/celeba/, supplied by the user; CelebA is licence-gated and served from Google
Drive, so it is never downloaded automatically):

    img_align_celeba.zip  (or the extracted folder img_align_celeba/ with 000001.jpg ... 202599.jpg)
    list_attr_celeba.txt      line 1: count, line 2: the 40 attribute names, then "000001.jpg  -1  1 ..."
    identity_CelebA.txt       "000001.jpg 2880"
    list_eval_partition.txt   "000001.jpg 0"   (0 train, 1 val, 2 test)

Processing: every 178x218 aligned image is cropped to the 148x148 box whose top-left corner is
(x=15, y=40) (the face-centred crop of Larsen et al. 2016 used by most CelebA GANs), then resized to
``image_size`` (64 for the thesis, Table 3.1) with a box filter. Splits are identity-disjoint: an
identity goes to the split where most of its images are in the official partition (the official
partition already is identity-disjoint; the vote only matters for edited partition files).

``write_synthetic_celeba`` writes a small source in exactly this layout (JPEGs inside a zip, the three
text files) so that the smoke profile and the tests run this very ingestion code.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages import paths
from stages.datasets.fetch import verify_checksum
from stages.errors import ConfigError, DataError, atomic_path

RAW_FILES = ["img_align_celeba.zip", "list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"]
# MD5s of the official files (as listed by torchvision.datasets.CelebA).
MD5 = {
    "img_align_celeba.zip": "00d2c5bc6d35e252742224ab0c1e8fcb",
    "list_attr_celeba.txt": "75e246fa4810816ffd6ee81facbd244c",
    "identity_CelebA.txt": "32bd1bd63d3c78cd57e08160ec5ed1e2",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}
WHERE = ("CelebA is licence-gated: download the 'Align&Cropped Images' zip (img_align_celeba.zip) and, from "
         "'Anno' and 'Eval', list_attr_celeba.txt, identity_CelebA.txt and list_eval_partition.txt from "
         "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive / Baidu links there), and put the "
         "four files in {raw}/")
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
ALIGNED_SIZE = (178, 218)           # width, height of img_align_celeba images
CROP_BOX = (15, 40, 15 + 148, 40 + 148)  # left, top, right, bottom
SPLITS = ("train", "val", "test")


def check_raw(raw_dir: str | os.PathLike, *, verify: bool = True) -> dict[str, Path]:
    """Paths of the four raw inputs; DataError saying where to get them when any is missing."""
    raw = Path(raw_dir)
    found = {}
    missing = []
    for name in RAW_FILES:
        path = raw / name
        if name == "img_align_celeba.zip" and not path.is_file() and (raw / "img_align_celeba").is_dir():
            path = raw / "img_align_celeba"
        if not path.exists():
            missing.append(name)
        found[name] = path
    if missing:
        raise DataError(f"CelebA files missing in {raw}: {', '.join(missing)}. " + WHERE.format(raw=raw))
    if verify:
        for name, path in found.items():
            if path.is_file():
                verify_checksum(path, md5=MD5[name])
    return found


def _rows(path: Path, skip: int, width: int) -> list[list[str]]:
    try:
        lines = path.read_text().splitlines()[skip:]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc}); replace it with the official file.") from exc
    rows = [line.split() for line in lines if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise DataError(f"{path}: line {bad + skip + 1} has {len(rows[bad])} fields, expected {width}; "
                        "replace it with the official file.")
    return rows


def read_annotations(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Filenames, attributes in {0, 1} [N, 40], identities and the official partition, aligned by filename."""
    attr_path = files["list_attr_celeba.txt"]
    try:
        names = attr_path.read_text().splitlines()[1].split()
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise DataError(f"{attr_path}: no attribute-name line ({exc}); replace it with the official file.") from exc
    if names != ATTRIBUTES:
        raise DataError(f"{attr_path}: line 2 must list the 40 CelebA attributes ({ATTRIBUTES[0]} ... "
                        f"{ATTRIBUTES[-1]}); got {len(names)} names.")
    attrs = _rows(attr_path, 2, 41)
    filenames = np.array([r[0] for r in attrs])
    values = np.array([r[1:] for r in attrs], dtype=np.int8)
    if not np.isin(values, (-1, 1)).all():
        raise DataError(f"{attr_path}: attribute values must be -1 or 1.")
    ident = dict((r[0], int(r[1])) for r in _rows(files["identity_CelebA.txt"], 0, 2))
    part = dict((r[0], int(r[1])) for r in _rows(files["list_eval_partition.txt"], 0, 2))
    lost = [f for f in filenames if f not in ident or f not in part]
    if lost:
        raise DataError(f"{len(lost)} images of list_attr_celeba.txt (e.g. {lost[0]}) are missing from "
                        "identity_CelebA.txt or list_eval_partition.txt; use the official files together.")
    return {"filenames": filenames, "attrs": ((values + 1) // 2).astype(np.uint8),
            "identity": np.array([ident[f] for f in filenames], np.int32),
            "partition": np.array([part[f] for f in filenames], np.int8)}


def identity_disjoint_split(identity: np.ndarray, partition: np.ndarray) -> np.ndarray:
    """Split index (0/1/2) per image such that no identity spans two splits: majority vote per identity."""
    ids, inverse = np.unique(identity, return_inverse=True)
    counts = np.zeros((len(ids), 3), np.int64)
    np.add.at(counts, (inverse, partition.astype(np.int64)), 1)
    return counts.argmax(axis=1)[inverse].astype(np.int8)


def crop_resize(jpeg: bytes, image_size: int, name: str = "") -> np.ndarray:
    """One aligned CelebA JPEG -> uint8 [3, S, S] (face-centred 148x148 crop, box-filter resize)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            im = im.convert("RGB")
            if im.size != ALIGNED_SIZE:
                raise DataError(f"{name}: {im.size[0]}x{im.size[1]} image, expected the aligned "
                                f"{ALIGNED_SIZE[0]}x{ALIGNED_SIZE[1]} (img_align_celeba, not img_celeba).")
            face = im.crop(CROP_BOX).resize((image_size, image_size), Image.BOX)
    except DataError:
        raise
    except Exception as exc:  # PIL raises several kinds on truncated files
        raise DataError(f"{name}: not a readable JPEG ({exc}); re-extract img_align_celeba.zip.") from exc
    return np.asarray(face, np.uint8).transpose(2, 0, 1)


class _ImageSource:
    """Reads image bytes by filename from the zip or from the extracted folder."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise DataError(f"{path}: corrupt zip ({exc}); download img_align_celeba.zip again.") from exc
            self.members = {Path(n).name: n for n in self.zip.namelist() if n.lower().endswith(".jpg")}

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            if name not in self.members:
                raise DataError(f"{self.path}: has no {name}; the zip does not match list_attr_celeba.txt.")
            return self.zip.read(self.members[name])
        file = self.path / name
        if not file.is_file():
            raise DataError(f"{file} missing: the image folder does not match list_attr_celeba.txt.")
        return file.read_bytes()

    def close(self):
        if self.zip is not None:
            self.zip.close()


def load_celeba(raw_dir: str | os.PathLike, image_size: int = 64, *, verify: bool = True,
                max_images: int | None = None) -> dict[str, np.ndarray]:
    """Processed arrays: <split>_images uint8 [N, 3, S, S], <split>_attrs, <split>_identity, attr_names."""
    files = check_raw(raw_dir, verify=verify)
    ann = read_annotations(files)
    if max_images is not None:
        ann = {k: v[:max_images] for k, v in ann.items()}
    split = identity_disjoint_split(ann["identity"], ann["partition"])
    source = _ImageSource(files["img_align_celeba.zip"])
    images = np.empty((len(ann["filenames"]), 3, image_size, image_size), np.uint8)
    try:
        for i, name in enumerate(tqdm(ann["filenames"], desc="celeba", unit="img", mininterval=2.0)):
            images[i] = crop_resize(source.read(name), image_size, name)
    finally:
        source.close()
    out = {"attr_names": np.array(ATTRIBUTES)}
    for k, name in enumerate(SPLITS):
        keep = split == k
        out[f"{name}_images"] = images[keep]
        out[f"{name}_attrs"] = ann["attrs"][keep]
        out[f"{name}_identity"] = ann["identity"][keep]
    return out


# --------------------------------------------------------------------------------------------------
# Synthetic source in the real layout (smoke profile, tests)
# --------------------------------------------------------------------------------------------------

def _draw_face(rng: np.random.Generator, attrs: np.ndarray, identity_colour: np.ndarray) -> np.ndarray:
    """A 218x178 RGB cartoon face whose hair, mouth, glasses and beard follow a few of its attributes."""
    h, w = ALIGNED_SIZE[1], ALIGNED_SIZE[0]
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(40, 200, 3)                           # background
    a = dict(zip(ATTRIBUTES, attrs))
    cx, cy = w / 2 + rng.normal(0, 2), 120 + rng.normal(0, 2)
    face = ((xx - cx) / 45) ** 2 + ((yy - cy) / 58) ** 2 <= 1
    img[face] = identity_colour
    hair = (((xx - cx) / 52) ** 2 + ((yy - cy + 20) / 62) ** 2 <= 1) & ~face & (yy < cy)
    hair_colour = [30, 25, 20] if a["Black_Hair"] else [220, 190, 90] if a["Blond_Hair"] else [120, 80, 50]
    if not a["Bald"]:
        img[hair] = hair_colour
    for ex in (cx - 18, cx + 18):                              # eyes, glasses as dark rings
        eye = ((xx - ex) / 6) ** 2 + ((yy - cy + 12) / 4) ** 2 <= 1
        img[eye] = [20, 20, 20]
        if a["Eyeglasses"]:
            ring = np.abs(np.hypot(xx - ex, yy - cy + 12) - 11) < 2
            img[ring] = [10, 10, 10]
    mouth_h = 7 if a["Mouth_Slightly_Open"] or a["Smiling"] else 2
    mouth = (np.abs(xx - cx) < (20 if a["Smiling"] else 12)) & (np.abs(yy - cy - 30) < mouth_h)
    img[mouth] = [200, 40, 60] if a["Wearing_Lipstick"] else [120, 50, 50]
    if a["Goatee"] or a["Mustache"]:
        img[face & (yy > cy + 38)] *= 0.5
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synthetic_celeba(raw_dir: str | os.PathLike, n_images: int = 120, n_identities: int = 24,
                           seed: int = 0) -> Path:
    """Write a small CelebA look-alike in the official raw layout (zip of 178x218 JPEGs + 3 text files)."""
    from PIL import Image

    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    identity = np.sort(rng.integers(1, n_identities + 1, n_images))
    skin = rng.uniform(120, 240, (n_identities + 1, 3))
    # Identities 1..60% train, next 20% val, rest test, as in the official (identity-disjoint) partition.
    bounds = np.quantile(np.arange(1, n_identities + 1), [0.6, 0.8])
    partition = np.digitize(identity, bounds, right=True)
    attrs = (rng.random((n_images, len(ATTRIBUTES))) < 0.3).astype(np.int8)
    names = [f"{i + 1:06d}.jpg" for i in range(n_images)]
    with zipfile.ZipFile(raw / "img_align_celeba.zip", "w", zipfile.ZIP_STORED) as zf:
        for name, a, ident in zip(names, attrs, identity):
            buf = io.BytesIO()
            Image.fromarray(_draw_face(rng, a, skin[ident])).save(buf, format="JPEG", quality=90)
            zf.writestr(f"img_align_celeba/{name}", buf.getvalue())
    signed = attrs * 2 - 1
    lines = [str(n_images), " ".join(ATTRIBUTES)]
    lines += [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, signed)]
    (raw / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (raw / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for n, i in zip(names, identity)))
    (raw / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition)))
    return raw


def preprocess(cfg: dict, profile: str) -> str:
    """Aligned faces cropped to image_size, attributes, identity-disjoint splits.

    source synthetic (smoke, ci): a small look-alike is written in the official raw layout to a temporary
    folder and read by the same ingestion code as the real files.
    """
    if cfg["source"] == "official":
        arrays = load_celeba(paths.raw_dir("celeba"), cfg["image_size"], verify=cfg.get("verify", True))
    elif cfg["source"] == "synthetic":
        with tempfile.TemporaryDirectory() as raw:
            write_synthetic_celeba(raw, n_images=cfg["n_synthetic"], n_identities=cfg["n_identities"],
                                   seed=cfg.get("seed", 0))
            arrays = load_celeba(raw, cfg["image_size"], verify=False)
    else:
        raise ConfigError(f"datasets.celeba.source must be 'official' or 'synthetic', not {cfg['source']!r}")
    out = paths.processed_files(profile, "celeba")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    sizes = ", ".join(f"{len(arrays[s + '_images'])} {s}" for s in SPLITS)
    print(f"wrote {out}: {sizes} faces of {cfg['image_size']}x{cfg['image_size']} ({cfg['source']})")
    return out
