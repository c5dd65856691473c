"""102-Flowers for chapter 4.2 (Nilsback & Zisserman 2008): category = content, all 8,189 images train [thesis].

Raw files in data/raw/flowers102/: ``102flowers.tgz`` (jpg/image_%05d.jpg) and ``imagelabels.mat``
(``labels``: 1 x 8,189 categories 1-102), from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/, MD5s as
published by torchvision. An existing ``data/raw/flowers/102flowers.tgz`` (chapter 5's) is reused once its
MD5 matches. Processing: shorter side to ``image_size`` then centre crop (the authors' Resize + CenterCrop).
There is no test split in the thesis: ``test`` holds one image per category (display inputs for figures).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from stages.datasets import fetch, flowers
from stages.datasets.flowers import URL
from stages.datasets.segmentation import TarReader, decode_image, resize_crop
from stages.errors import DataError

# The image archive is the one Chapter 5 reads (same URL and MD5); only the category labels are new here.
FILES = {"102flowers.tgz": flowers.FILES["102flowers.tgz"], "imagelabels.mat": "e0620be6f572b9609742df49c70aed4d"}
N_IMAGES = 8189
SHARED_ARCHIVE = Path("data/raw/flowers/102flowers.tgz")


def download(raw_dir: str | Path, shared: Path = SHARED_ARCHIVE) -> None:
    raw_dir = Path(raw_dir)
    target = raw_dir / "102flowers.tgz"
    if not target.exists() and shared.is_file():
        try:
            fetch.verify_checksum(shared, md5=FILES["102flowers.tgz"])
            raw_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared, target)
        except DataError:
            pass                                    # a different file: download the official one instead
    for name, md5 in FILES.items():
        fetch.download(URL + name, raw_dir / name, md5=md5)


def read_labels(path: Path, verify: bool = True) -> np.ndarray:
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path} is missing: download imagelabels.mat from {URL} into {path.parent}/.")
    if verify:
        fetch.verify_checksum(path, md5=FILES["imagelabels.mat"])
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:
        raise DataError(f"{path} is not a MATLAB file ({exc}): download imagelabels.mat again from {URL}.") from exc
    if "labels" not in mat:
        raise DataError(f"{path} has no 'labels' variable (found {sorted(k for k in mat if not k.startswith('__'))}): "
                        f"it is not imagelabels.mat; download it again from {URL}.")
    labels = np.asarray(mat["labels"]).ravel().astype(np.int64)
    return labels


def load(raw_dir: str | Path, image_size: int, verify: bool = True, n_images: int = N_IMAGES) -> dict[str, np.ndarray]:
    raw_dir = Path(raw_dir)
    labels = read_labels(raw_dir / "imagelabels.mat", verify)
    if len(labels) != n_images:
        raise DataError(f"{raw_dir / 'imagelabels.mat'} has {len(labels)} labels, expected {n_images} (one per "
                        f"image of 102flowers.tgz): download it again from {URL}.")
    names = [f"jpg/image_{i:05d}.jpg" for i in range(1, n_images + 1)]
    with TarReader(raw_dir / "102flowers.tgz", FILES["102flowers.tgz"] if verify else None) as tar:
        missing = [n for n in names if n not in tar.members]
        if missing:
            raise DataError(f"{tar.path} lacks {missing[0]} (and {len(missing) - 1} more): download it again from {URL}.")
        decoded = tar.decode_many(names, lambda n, b: resize_crop(decode_image(b, n, tar.path), image_size))
    images = np.stack([decoded[n] for n in names]).transpose(0, 3, 1, 2).copy()
    first = np.unique(labels, return_index=True)[1]
    return {"train_images": images, "train_content": labels, "test_images": images[first], "test_content": labels[first]}


def preprocess(cfg: dict, profile: str) -> str:
    from stages import paths
    from stages.datasets.multiview import write_views

    arrays = load(paths.raw_dir("flowers102"), cfg["image_size"], verify=cfg.get("verify", True))
    return write_views(profile, "flowers102", arrays, "102flowers.tgz + imagelabels.mat")
