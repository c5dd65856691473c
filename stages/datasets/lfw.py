"""LFW funneled with the Kae et al. (2013) part labels (thesis 5.4).

Raw files in data/raw/lfw/: lfw-funneled.tgz (lfw_funneled/<person>/<person>_%04d.jpg) and
parts_lfw_funneled_gt_images.tgz (parts_lfw_funneled_gt_images/<person>_%04d.ppm; red hair, green
face, blue background). Foreground = face + hair = not blue (blue channel < 128).

Splits: train = every image without a part label (10,306 in the real set). The labelled images (2,927)
are split by person so that no identity is in both: persons are ordered by the SHA-256 of their name
and whole persons go to validation, in that order, until it holds round(n * 1327 / 2927) images; the
others are the test set (1,600 on the real set, up to the last person's images). The ReDO repository
ships its own lists (datasplits/lfw-funneled/{train,val,test}.txt: `person basename` lines); put them in
data/raw/lfw/ to use them instead.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from stages.datasets import fetch
from stages.datasets.segmentation import TarReader, decode_image, resize_crop, stack
from stages.errors import DataError

URL = "http://vis-www.cs.umass.edu/lfw/"
IMAGES, PARTS = "lfw-funneled.tgz", "parts_lfw_funneled_gt_images.tgz"
# MD5 of lfw-funneled.tgz as published by torchvision's LFW; the part-label archive's checksum is not
# published, so its format (a readable tar of ppm files) is verified instead.
FILES = {IMAGES: "1b42dfed7d15c9b2dd63d5e5840c86ad", PARTS: None}
VAL_FRACTION = 1327 / 2927
LIST_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}


def download(raw_dir: str | Path) -> None:
    fetch.download(URL + IMAGES, Path(raw_dir) / IMAGES, md5=FILES[IMAGES])
    fetch.download(URL + "part_labels/" + PARTS, Path(raw_dir) / PARTS)


def person_of(basename: str) -> str:
    return basename.rsplit("_", 1)[0]


def split_labelled(basenames: list[str]) -> tuple[list[str], list[str]]:
    """Identity-disjoint val/test split of the labelled images (rule in the module docstring)."""
    by_person: dict[str, list[str]] = {}
    for b in sorted(basenames):
        by_person.setdefault(person_of(b), []).append(b)
    order = sorted(by_person, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    target = round(len(basenames) * VAL_FRACTION)
    val, test = [], []
    for person in order:
        (val if len(val) < target else test).extend(by_person[person])
    return val, test


def _read_lists(raw_dir: Path) -> dict[str, list[str]] | None:
    if not all((raw_dir / f).is_file() for f in LIST_FILES.values()):
        return None
    out = {}
    for split, f in LIST_FILES.items():
        lines = [ln.split() for ln in (raw_dir / f).read_text().splitlines() if ln.strip()]
        out[split] = [parts[-1].removesuffix(".jpg") for parts in lines]
    return out


def load(raw_dir: str | Path, size: int, verify: bool = True) -> tuple[dict[str, np.ndarray], bool]:
    """``verify``: check the published checksum (off for the synthetic look-alikes of smoke and ci)."""
    raw_dir = Path(raw_dir)
    arrays = {}
    with TarReader(raw_dir / IMAGES, FILES[IMAGES] if verify else None) as imgs, TarReader(raw_dir / PARTS) as parts:
        jpgs = {Path(n).stem: n for n in imgs.names() if n.startswith("lfw_funneled/") and n.endswith(".jpg")}
        ppms = {Path(n).stem: n for n in parts.names() if n.endswith(".ppm")}
        if not jpgs:
            raise DataError(f"{imgs.path} holds no lfw_funneled/<person>/*.jpg images: is it lfw-funneled.tgz?")
        orphans = sorted(set(ppms) - set(jpgs))
        if orphans:
            raise DataError(f"{parts.path}: part label {ppms[orphans[0]]} has no image in {imgs.path} "
                            f"({len(orphans)} such labels).")
        lists = _read_lists(raw_dir)
        if lists is None:
            val, test = split_labelled(list(ppms))
            lists = {"train": sorted(set(jpgs) - set(ppms)), "val": val, "test": test}
        for split, names in lists.items():
            for b in names:
                if b not in jpgs:
                    raise DataError(f"the {split} list names {b}, which {imgs.path} does not hold.")
                if split != "train" and b not in ppms:
                    raise DataError(f"{split} image {b} has no part label in {parts.path}.")
        every = [b for names in lists.values() for b in names]
        labelled = [b for s in ("val", "test") for b in lists[s]]
        images = imgs.decode_many([jpgs[b] for b in every], lambda n, d: resize_crop(decode_image(d, n, imgs.path), size))
        masks = parts.decode_many([ppms[b] for b in labelled], lambda n, d: (
            resize_crop(decode_image(d, n, parts.path), size)[..., 2] < 128).astype(np.uint8))
    for split, names in lists.items():
        arrays[f"{split}_images"] = stack([images[jpgs[b]] for b in names], size)
        arrays[f"{split}_masks"] = stack([] if split == "train" else [masks[ppms[b]] for b in names], size, None)
    return arrays, False
