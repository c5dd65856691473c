"""CUB-200-2011 with its segmentations (thesis 5.4: 10,000 train / 788 val / 1,000 test).

Raw files in data/raw/cub/: CUB_200_2011.tgz (CUB_200_2011/images.txt "id path" lines and
CUB_200_2011/images/<path>) and segmentations.tgz (segmentations/<path with .png>, soft masks 0-255,
binarised at > 0.5 after the resize). Grey images are expanded to 3 channels.

Split: the ReDO repository's train_val_test_split.txt ("id code" lines, 0 train / 1 val / 2 test) when
placed in data/raw/cub/; otherwise a fixed rule: image ids permuted with numpy's default_rng(0), the first
round(n * 1000 / 11788) are test, the next round(n * 788 / 11788) validation, the rest (10,000) train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.datasets import fetch
from stages.datasets.segmentation import TarReader, decode_image, resize_crop, stack
from stages.errors import DataError

IMAGES, SEGS, SPLIT_FILE = "CUB_200_2011.tgz", "segmentations.tgz", "train_val_test_split.txt"
URLS = {IMAGES: "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
        SEGS: "https://data.caltech.edu/records/w9d68-gec53/files/segmentations.tgz"}
# No checksum of these archives could be verified here; their format (readable tars with images.txt and
# the segmentation pngs) is checked when they are read.
FILES = {IMAGES: None, SEGS: None}
CODES = {"train": 0, "val": 1, "test": 2}


def download(raw_dir: str | Path) -> None:
    for name, url in URLS.items():
        fetch.download(url, Path(raw_dir) / name)


def default_split(ids: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(np.sort(ids))
    n_test, n_val = round(len(ids) * 1000 / 11788), round(len(ids) * 788 / 11788)
    return {"train": np.sort(perm[n_test + n_val:]), "val": np.sort(perm[n_test:n_test + n_val]),
            "test": np.sort(perm[:n_test])}


def _read_split_file(path: Path, ids: set[int]) -> dict[str, np.ndarray]:
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        pairs = [(int(a), int(b)) for a, b in rows]
    except ValueError as exc:
        raise DataError(f"{path}: expected 'image_id code' lines ({exc}).") from exc
    for i, _ in pairs:
        if i not in ids:
            raise DataError(f"{path} names image id {i}, which images.txt does not list.")
    return {s: np.array(sorted(i for i, c in pairs if c == code), int) for s, code in CODES.items()}


def load(raw_dir: str | Path, size: int, verify: bool = True) -> tuple[dict[str, np.ndarray], bool]:
    """``verify`` is accepted for symmetry with Flowers and LFW: CUB has no published checksum."""
    raw_dir = Path(raw_dir)
    with TarReader(raw_dir / IMAGES) as imgs, TarReader(raw_dir / SEGS) as segs:
        listing = imgs.read("CUB_200_2011/images.txt", "index").decode().split("\n")
        paths = {int(ln.split()[0]): ln.split()[1] for ln in listing if ln.strip()}
        split_path = raw_dir / SPLIT_FILE
        split = (_read_split_file(split_path, set(paths)) if split_path.is_file()
                 else default_split(np.array(sorted(paths))))
        rels = [paths[int(i)] for ids in split.values() for i in ids]
        for rel in rels:
            if f"CUB_200_2011/images/{rel}" not in imgs.members:
                raise DataError(f"images.txt names {rel} but {imgs.path} has no CUB_200_2011/images/{rel}.")
            if _seg_name(rel) not in segs.members:
                raise DataError(f"image {rel} has no mask: {segs.path} lacks {_seg_name(rel)}.")
        images = imgs.decode_many([f"CUB_200_2011/images/{r}" for r in rels],
                                  lambda n, b: resize_crop(decode_image(b, n, imgs.path), size))
        masks = segs.decode_many([_seg_name(r) for r in rels], lambda n, b: (
            resize_crop(decode_image(b, n, segs.path, mode="L"), size) > 127).astype(np.uint8))
    arrays = {}
    for name, split_ids in split.items():
        arrays[f"{name}_images"] = stack([images[f"CUB_200_2011/images/{paths[int(i)]}"] for i in split_ids], size)
        arrays[f"{name}_masks"] = stack([masks[_seg_name(paths[int(i)])] for i in split_ids], size, None)
    return arrays, True


def _seg_name(rel: str) -> str:
    return f"segmentations/{rel.rsplit('.', 1)[0]}.png"
