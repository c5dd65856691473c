"""Oxford 102 Flowers with the Nilsback-Zisserman segmentations (thesis 5.4, ReDO splits).

Raw files in data/raw/flowers/: 102flowers.tgz (jpg/image_%05d.jpg), 102segmentations.tgz
(segmim/segmim_%05d.jpg, background painted pure blue) and setid.mat (trnid, valid, tstid, 1-based ids).
ReDO swaps the official splits on purpose: train = tstid (6,149), val = valid (1,020), test = trnid (1,020).
Mask (anchors §2, the ReDO code's rule): background where R == 0 OR G == 0 OR B == 254 on the decoded
segmim JPEG (the background is painted blue, and JPEG noise at its edge moves single channels, which the OR
keeps on the background side); everything else foreground.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from stages.datasets import fetch
from stages.datasets.segmentation import TarReader, decode_image, resize_crop, stack
from stages.errors import DataError

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
# MD5s of the official files as published by torchvision's Flowers102; the segmentation archive's
# checksum is not published there, so its format (a readable tar of segmim jpegs) is verified instead.
FILES = {"102flowers.tgz": "52808999861908f626f3c1f4e79d11fa", "102segmentations.tgz": None,
         "setid.mat": "a5357ecc9cb78c4bef273ce3793fc85c"}
SPLIT_KEYS = {"train": "tstid", "val": "valid", "test": "trnid"}


def download(raw_dir: str | Path) -> None:
    for name, md5 in FILES.items():
        fetch.download(URL + name, Path(raw_dir) / name, md5=md5)


def read_setid(path: Path, verify: bool = True) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} is missing: download setid.mat from {URL}.")
    if verify:
        fetch.verify_checksum(path, md5=FILES["setid.mat"])
    try:
        mat = scipy.io.loadmat(path)
        return {split: np.asarray(mat[key]).ravel().astype(int) for split, key in SPLIT_KEYS.items()}
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise DataError(f"{path} is corrupt or lacks trnid/valid/tstid ({exc}): download it again.") from exc


def mask_from_segmim(seg: np.ndarray) -> np.ndarray:
    background = (seg[..., 0] == 0) | (seg[..., 1] == 0) | (seg[..., 2] == 254)
    return (~background).astype(np.uint8)


def load(raw_dir: str | Path, size: int, verify: bool = True) -> tuple[dict[str, np.ndarray], bool]:
    """``verify``: check the published checksums (off for the synthetic look-alikes of smoke and ci)."""
    raw_dir = Path(raw_dir)
    ids = read_setid(raw_dir / "setid.mat", verify)
    arrays = {}
    md5 = (lambda name: FILES[name] if verify else None)
    with TarReader(raw_dir / "102flowers.tgz", md5("102flowers.tgz")) as imgs, \
            TarReader(raw_dir / "102segmentations.tgz", md5("102segmentations.tgz")) as segs:
        all_ids = np.concatenate(list(ids.values()))
        for i in all_ids:
            if f"jpg/image_{i:05d}.jpg" not in imgs.members:
                raise DataError(f"{raw_dir / 'setid.mat'} names image {i} but {imgs.path} has no jpg/image_{i:05d}.jpg.")
            if f"segmim/segmim_{i:05d}.jpg" not in segs.members:
                raise DataError(f"image jpg/image_{i:05d}.jpg has no mask: {segs.path} lacks segmim/segmim_{i:05d}.jpg.")
        images = imgs.decode_many([f"jpg/image_{i:05d}.jpg" for i in all_ids],
                                  lambda n, b: resize_crop(decode_image(b, n, imgs.path), size))
        masks = segs.decode_many([f"segmim/segmim_{i:05d}.jpg" for i in all_ids],
                                 lambda n, b: mask_from_segmim(resize_crop(decode_image(b, n, segs.path), size)))
    for split, split_ids in ids.items():
        arrays[f"{split}_images"] = stack([images[f"jpg/image_{i:05d}.jpg"] for i in split_ids], size)
        arrays[f"{split}_masks"] = stack([masks[f"segmim/segmim_{i:05d}.jpg"] for i in split_ids], size, None)
    return arrays, True
