"""Multi-view data of chapter 4.2 as (images, content ids) per split, and the pair / tuple sampler.

Datasets: the ``views.npz`` layout (stages/datasets/multiview.py: multi-view MNIST, chairs, MVC, Flowers)
and CelebA's ``faces.npz`` (stages/datasets/celeba.py), whose three identity-disjoint splits are pooled and
re-split by identity number: identities below ``test_identities_from`` train, the rest test (thesis: 1-9,999
train, 10,000-10,177 test, Table 4.2 [our reading]). Content = identity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages import paths
from stages.datasets.arrays import load_npz
from stages.datasets.multiview import KEYS
from stages.errors import ConfigError, DataError

CELEBA_SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray            # uint8 [M, C, S, S]
    content: np.ndarray           # int64 [M]
    attrs: np.ndarray | None = None   # CelebA: int8 [M, 40] (0 / 1)

    def __len__(self) -> int:
        return len(self.images)


def celeba_splits(profile: str, test_from: int) -> dict[str, Split]:
    keys = [f"{s}_{k}" for s in CELEBA_SPLITS for k in ("images", "identity", "attrs")]
    path = paths.processed_files(profile, "celeba")[0]
    faces = load_npz(path, keys)
    images = np.concatenate([faces[f"{s}_images"] for s in CELEBA_SPLITS])
    ident = np.concatenate([faces[f"{s}_identity"] for s in CELEBA_SPLITS]).astype(np.int64)
    attrs = np.concatenate([faces[f"{s}_attrs"] for s in CELEBA_SPLITS]).astype(np.int8)
    test = ident >= test_from
    if not test.any():
        raise DataError(f"{path} has no test identity (identity >= test_identities_from = {test_from}; largest "
                        f"identity {ident.max()}): lower protocols.<gmv protocol>.test_identities_from")
    if test.all():
        raise DataError(f"{path} has no train identity (all >= test_identities_from = {test_from}): raise it")
    return {"train": Split(images[~test], ident[~test], attrs[~test]), "test": Split(images[test], ident[test], attrs[test])}


def load_splits(cfg: dict, profile: str) -> dict[str, Split]:
    """Train and test splits of the experiment's dataset."""
    if cfg["dataset"] == "celeba":
        proto = cfg.get("protocol")
        if not proto:
            raise ConfigError(f"experiments.{cfg['name']}: a CelebA experiment of chapter 4.2 needs a `protocol` "
                              "(gmv kind) giving test_identities_from")
        return celeba_splits(profile, proto["test_identities_from"])
    arrays = load_npz(paths.processed_files(profile, cfg["dataset"])[0], KEYS)
    return {s: Split(arrays[f"{s}_images"], arrays[f"{s}_content"].astype(np.int64)) for s in ("train", "test")}


class TupleSampler:
    """Draws k images sharing one content: an anchor image uniformly, then k - 1 partners uniformly among the
    images of its content (a content with one image repeats it [authors' code]). Vectorised."""

    def __init__(self, content: np.ndarray):
        self.order = np.argsort(content, kind="stable")
        ids, self.start, self.count = np.unique(content[self.order], return_index=True, return_counts=True)
        self.slot = np.searchsorted(ids, content)          # content id -> position in ids
        self.n = len(content)

    def draw(self, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
        """Indices [n, k] into the split's images; column 0 is the anchor."""
        anchor = rng.integers(self.n, size=n)
        slot = self.slot[anchor]
        partners = self.start[slot][:, None] + (rng.random((n, k - 1)) * self.count[slot][:, None]).astype(np.int64)
        return np.concatenate([anchor[:, None], self.order[partners]], 1)

    def different(self, rng: np.random.Generator, n: int, content: np.ndarray) -> np.ndarray:
        """Pairs [n, 2] of images of two different contents (needs two contents)."""
        if len(self.count) < 2:
            raise DataError("negative pairs need two contents, the split has one")
        a = rng.integers(self.n, size=n)
        b = rng.integers(self.n, size=n)
        same = content[a] == content[b]
        while same.any():                                  # redraw the clashes only
            b[same] = rng.integers(self.n, size=int(same.sum()))
            same = content[a] == content[b]
        return np.stack([a, b], 1)


def to_float(images: np.ndarray, device) -> "torch.Tensor":
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).to(device, torch.float32) / 255.0
