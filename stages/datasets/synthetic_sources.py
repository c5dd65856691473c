"""Small synthetic stand-ins for the licence-gated segmentation archives, in their exact layouts and formats.

Each scene is a textured foreground blob (an ellipse with a wavy border) on a differently textured
background, so the mask is known exactly; the writers below pack such scenes the way the official
archives are packed (Flowers: jpg + segmim jpeg + setid.mat; LFW: person folders + part-label ppm;
CUB: images.txt + image folders + segmentation png), so the real ingestion code runs end to end.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 image [h, w, 3] and bool foreground mask [h, w]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    ry, rx = rng.uniform(0.18, 0.32) * h, rng.uniform(0.18, 0.32) * w
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.15 * np.sin(rng.integers(3, 7) * angle + rng.uniform(0, 2 * np.pi))
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= wobble ** 2
    freq = rng.uniform(0.2, 0.5)
    bg_col = rng.uniform(20, 120, size=3)
    fg_col = rng.uniform(140, 240, size=3)
    bg = bg_col + 25 * np.sin(freq * (xx + rng.uniform(0, 10)))[..., None] + rng.normal(0, 8, (h, w, 3))
    fg = fg_col + 20 * np.cos(freq * 1.7 * (yy + xx))[..., None] + rng.normal(0, 6, (h, w, 3))
    img = np.where(mask[..., None], fg, bg)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _exact_jpeg(arr: np.ndarray) -> bytes:
    """JPEG that keeps flat pure colours exact (no chroma subsampling, top quality), for segmim files."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=100, subsampling=0)
    return buf.getvalue()


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _write_tar(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))


def write_flowers(raw_dir: str | Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    imgs, segs = {}, {}
    for i in range(1, n + 1):
        img, mask = scene(rng, int(rng.integers(48, 72)), int(rng.integers(48, 72)))
        segim = np.where(mask[..., None], img, np.array([0, 0, 254], np.uint8))
        # Foreground pixels must never read as the background colour after the exact JPEG round trip.
        segim[mask] = np.maximum(segim[mask], 1)
        imgs[f"jpg/image_{i:05d}.jpg"] = _jpeg(img)
        segs[f"segmim/segmim_{i:05d}.jpg"] = _exact_jpeg(segim)
    _write_tar(raw_dir / "102flowers.tgz", imgs)
    _write_tar(raw_dir / "102segmentations.tgz", segs)
    ids = rng.permutation(np.arange(1, n + 1))
    n_small = max(2, n // 6)
    scipy.io.savemat(raw_dir / "setid.mat", {"trnid": np.sort(ids[:n_small])[None], "valid": np.sort(ids[n_small:2 * n_small])[None],
                                             "tstid": np.sort(ids[2 * n_small:])[None]})


def write_lfw(raw_dir: str | Path, n_persons: int, seed: int = 0, labelled_fraction: float = 0.4) -> None:
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    imgs, parts = {}, {}
    for p in range(n_persons):
        person = f"Person{p:03d}_Synthetic"
        labelled = rng.random() < labelled_fraction
        for k in range(1, int(rng.integers(1, 4)) + 1):
            base = f"{person}_{k:04d}"
            img, mask = scene(rng, 62, 62)
            imgs[f"lfw_funneled/{person}/{base}.jpg"] = _jpeg(img)
            if labelled:
                lab = np.zeros((62, 62, 3), np.uint8)
                lab[..., 2] = 255 * ~mask                                   # blue background
                hair = mask & (np.mgrid[0:62, 0:62][0] < np.argmax(mask.any(1)) + 6)
                lab[..., 0], lab[..., 1] = 255 * hair, 255 * (mask & ~hair)  # red hair, green face
                parts[f"parts_lfw_funneled_gt_images/{base}.ppm"] = _encode(lab, "PPM")
    _write_tar(raw_dir / "lfw-funneled.tgz", imgs)
    _write_tar(raw_dir / "parts_lfw_funneled_gt_images.tgz", parts)


def write_cub(raw_dir: str | Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    imgs, segs, listing = {}, {}, []
    for i in range(1, n + 1):
        rel = f"{1 + i % 3:03d}.Synthetic_bird_{i % 3}/Synthetic_Bird_{i:04d}.jpg"
        img, mask = scene(rng, int(rng.integers(48, 72)), int(rng.integers(48, 72)))
        if i % 7 == 0:  # a few grey images, as in CUB
            img = img.mean(-1).astype(np.uint8)
        listing.append(f"{i} {rel}")
        imgs[f"CUB_200_2011/images/{rel}"] = _jpeg(img)
        soft = (mask * rng.uniform(200, 255)).astype(np.uint8)
        segs[f"segmentations/{rel[:-4]}.png"] = _encode(soft, "PNG")
    imgs["CUB_200_2011/images.txt"] = ("\n".join(listing) + "\n").encode()
    _write_tar(raw_dir / "CUB_200_2011.tgz", imgs)
    _write_tar(raw_dir / "segmentations.tgz", segs)


WRITERS = {"flowers": write_flowers, "lfw": write_lfw, "cub": write_cub}
