"""3D-Chairs (Aubry et al. 2014, "Seeing 3D chairs"): 1,393 chairs x 62 rendered views, 600x600 PNG.

Raw file: data/raw/chairs/rendered_chairs.tar, from
https://www.di.ens.fr/willow/research/seeing3Dchairs/data/rendered_chairs.tar (no published checksum, so
the layout is checked instead). Members: ``rendered_chairs/<chair id>/renders/image_<n>_p<elev>_t<azim>_r096.png``
(31 azimuths x 2 elevations per chair). Processing [authors' code]: centre crop of half the side (300 of
600), resized to ``image_size`` (64); chairs sorted by id, the first ``n_train_chairs`` (1,300) train, the
rest (93) test [our reading]. ``write_synthetic_chairs`` writes procedural chairs (seat, back and leg
boxes, painted with flat shading) in exactly this layout, so smoke runs and tests read them with this code.
"""
from __future__ import annotations

import io
import re
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from stages import paths
from stages.datasets.fetch import download as fetch
from stages.datasets.multiview import write_views
from stages.errors import ConfigError, DataError

ARCHIVE = "rendered_chairs.tar"
URL = "https://www.di.ens.fr/willow/research/seeing3Dchairs/data/rendered_chairs.tar"
VIEWS_PER_CHAIR = 62
AZIMUTHS, ELEVATIONS = 31, (20, 30)
MEMBER = re.compile(r"(?:^|/)([^/]+)/renders/image_(\d+)_p(\d+)_t(\d+)_r(\d+)\.png$")
WHERE = f"download {URL} (about 1 GB) into data/raw/chairs/ (or run `python -m stages.download --dataset chairs`)"


def download(raw_dir: str | Path) -> None:
    """``python -m stages.download --dataset chairs``: fetch the archive (resumable); no checksum is published."""
    target = Path(raw_dir) / ARCHIVE
    if not target.exists():
        fetch(URL, target)


def _decode(data: bytes, image_size: int, name: str) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:
        raise DataError(f"{name} is not a readable PNG ({exc}): re-download {ARCHIVE}") from exc
    w, h = img.size
    box = (w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2)          # centre crop of half the side
    img = img.crop(box).resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(img, np.uint8).transpose(2, 0, 1)


def read_chairs(archive: str | Path, image_size: int) -> dict[str, np.ndarray]:
    """{chair id: uint8 [62, 3, S, S] in view-name order}; DataError for a missing archive or a chair
    without 62 views."""
    archive = Path(archive)
    if not archive.is_file():
        raise DataError(f"{archive} is missing: {WHERE}.")
    views: dict[str, dict[str, np.ndarray]] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                m = MEMBER.search(member.name)
                if not (m and member.isfile()):
                    continue
                data = tar.extractfile(member).read()
                views.setdefault(m.group(1), {})[Path(member.name).name] = _decode(data, image_size,
                                                                                   f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive} is not a readable tar ({exc}): {WHERE}.") from exc
    if not views:
        raise DataError(f"{archive} holds no <chair>/renders/image_*_p*_t*_r*.png members: it is not the "
                        f"rendered_chairs archive; {WHERE}.")
    bad = {c: len(v) for c, v in views.items() if len(v) != VIEWS_PER_CHAIR}
    if bad:
        shown = ", ".join(f"{c} ({n} views)" for c, n in sorted(bad.items())[:5])
        raise DataError(f"{archive}: chairs without {VIEWS_PER_CHAIR} PNG views: {shown}; the archive is incomplete, "
                        f"{WHERE}.")
    return {c: np.stack([v[k] for k in sorted(v)]) for c, v in sorted(views.items())}


def split_chairs(chairs: dict[str, np.ndarray], n_train: int) -> dict[str, np.ndarray]:
    """Sorted ids: the first ``n_train`` chairs train, the rest test; content id = rank of the chair id."""
    ids = sorted(chairs)
    if not 0 < n_train < len(ids):
        raise ConfigError(f"datasets.chairs.n_train_chairs = {n_train} must leave train and test chairs "
                          f"({len(ids)} chairs in the archive)")
    out = {}
    for split, part in (("train", ids[:n_train]), ("test", ids[n_train:])):
        first = 0 if split == "train" else n_train
        out[f"{split}_images"] = np.concatenate([chairs[c] for c in part])
        out[f"{split}_content"] = np.repeat(np.arange(first, first + len(part)), VIEWS_PER_CHAIR).astype(np.int64)
    return out


# ------------------------------------------------------------------------------------------------ synthetic source
_BOX_FACES = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]


def _chair_boxes(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(min corner, max corner) of seat, back and four legs in a unit cube around the origin (y up)."""
    w, d, leg, back = rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.9), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.7)
    t = 0.07
    boxes = [((-w / 2, leg - 0.5, -d / 2), (w / 2, leg - 0.5 + t, d / 2)),                  # seat
             ((-w / 2, leg - 0.5 + t, d / 2 - t), (w / 2, leg - 0.5 + t + back, d / 2))]    # back
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - t / 2), sz * (d / 2 - t / 2)
            boxes.append(((x - t / 2, -0.5, z - t / 2), (x + t / 2, leg - 0.5, z + t / 2)))
    return [(np.array(a), np.array(b)) for a, b in boxes]


def render_chair(boxes, colour: np.ndarray, azimuth: float, elevation: float, side: int) -> np.ndarray:
    """Orthographic flat-shaded render (painter's algorithm over box faces) on a white background."""
    from PIL import Image, ImageDraw

    az, el = np.deg2rad(azimuth), np.deg2rad(elevation)
    rot_y = np.array([[np.cos(az), 0, np.sin(az)], [0, 1, 0], [-np.sin(az), 0, np.cos(az)]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(el), -np.sin(el)], [0, np.sin(el), np.cos(el)]])
    rot = rot_x @ rot_y
    light = np.array([0.4, 0.7, -0.6]) / np.linalg.norm([0.4, 0.7, -0.6])
    polys = []
    for lo, hi in boxes:
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]) @ rot.T
        centre = corners.mean(0)
        for face in _BOX_FACES:
            pts = corners[list(face)]
            normal = np.cross(pts[1] - pts[0], pts[2] - pts[0])
            normal /= np.linalg.norm(normal) + 1e-12
            if np.dot(normal, pts.mean(0) - centre) < 0:
                normal = -normal
            if normal[2] > 0:                      # faces away from the camera (which looks along +z)
                continue
            shade = 0.45 + 0.55 * max(0.0, float(-normal @ light))
            polys.append((pts[:, 2].mean(), pts, shade))
    img = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    scale = side / 2.4                            # the chair fills the central half (the crop) of the image
    for _, pts, shade in sorted(polys, key=lambda p: -p[0]):
        xy = [(side / 2 + p[0] * scale, side / 2 - p[1] * scale) for p in pts]
        draw.polygon(xy, fill=tuple(int(c * shade) for c in colour))
    return np.asarray(img)


def write_synthetic_chairs(raw_dir: str | Path, n_chairs: int = 12, side: int = 64, seed: int = 0) -> Path:
    """A rendered_chairs.tar look-alike: ``n_chairs`` procedural chairs x 31 azimuths x 2 elevations."""
    from PIL import Image

    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = raw / ARCHIVE
    with tarfile.open(path, "w") as tar:
        for c in range(n_chairs):
            chair = f"{rng.integers(16 ** 8):08x}{c:04d}"            # hash-like ids, as in the official archive
            boxes, colour = _chair_boxes(rng), rng.integers(60, 230, 3)
            n = 0
            for elev in ELEVATIONS:
                for k in range(AZIMUTHS):
                    azim = round(360 * k / AZIMUTHS)
                    buf = io.BytesIO()
                    Image.fromarray(render_chair(boxes, colour, azim, elev, side)).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"rendered_chairs/{chair}/renders/image_{n:03d}_p{elev:03d}_t{azim:03d}_r096.png")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))
                    n += 1
    return path


def preprocess(cfg: dict, profile: str) -> str:
    """Official archive (paper) or procedural chairs in the official layout (smoke, ci)."""
    if cfg["source"] == "official":
        chairs = read_chairs(Path(paths.raw_dir("chairs")) / ARCHIVE, cfg["image_size"])
    elif cfg["source"] == "synthetic":
        with tempfile.TemporaryDirectory() as raw:
            archive = write_synthetic_chairs(raw, cfg["synthetic_chairs"], cfg["synthetic_side"], cfg.get("seed", 0))
            chairs = read_chairs(archive, cfg["image_size"])
    else:
        raise ConfigError(f"datasets.chairs.source must be 'official' or 'synthetic', not {cfg['source']!r}")
    return write_views(profile, "chairs", split_chairs(chairs, cfg["n_train_chairs"]), cfg["source"])
