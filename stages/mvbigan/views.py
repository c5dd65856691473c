"""The three view settings of thesis §3.1.3 and the data they are cut from.

- quarters (Figs 3.5, 3.6): the four 14x14 quarters of an MNIST digit (top-left, top-right,
  bottom-left, bottom-right), each a vector of 196 values; the target is the 784-pixel digit.
- incoming (Fig 3.7, A6): ``n_views`` views that are each a full 28x28 image in which a fresh random
  ``reveal_fraction`` of the pixels is observed and every other pixel is 0.5; the masks of the views
  are drawn independently per view and per example, so adding views reveals more pixels cumulatively.
- attr-face (Fig 3.8, A5): the 40 CelebA attributes (as -1/+1) and the face with its lower half
  (mouth and chin rows, the half the attributes say most about) replaced by 0.5 grey.

All images are float in [0, 1]. Batches are pure functions of (seed, step).
"""
from __future__ import annotations

import numpy as np
import torch

from stages import paths
from stages.errors import ConfigError
from stages.datasets.arrays import load_npz

SETTINGS = ("quarters", "incoming", "attr-face")


def specs(views_cfg: dict, image_size: int | None = None) -> tuple[dict, list[dict]]:
    """(target spec, view specs) of a setting, as MVBiGAN expects them."""
    setting = views_cfg["setting"]
    if setting == "quarters":
        return {"kind": "vector", "dim": 784}, [{"kind": "vector", "dim": 196} for _ in range(4)]
    if setting == "incoming":
        return {"kind": "vector", "dim": 784}, [{"kind": "vector", "dim": 784} for _ in range(views_cfg["n_views"])]
    if setting == "attr-face":
        face = {"kind": "image", "channels": 3, "size": image_size}
        return dict(face), [{"kind": "vector", "dim": 40}, face]
    raise ConfigError(f"unknown view setting {setting!r}; known: {', '.join(SETTINGS)}")


def view_names(views_cfg: dict) -> list[str]:
    setting = views_cfg["setting"]
    if setting == "quarters":
        return ["top-left", "top-right", "bottom-left", "bottom-right"]
    if setting == "incoming":
        return [f"view {k + 1}" for k in range(views_cfg["n_views"])]
    return ["attributes", "incomplete face"]


def make_views(views_cfg: dict, y: torch.Tensor, attrs: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """All views of a batch of targets ``y`` (vectors [B, 784] or faces [B, 3, S, S])."""
    setting = views_cfg["setting"]
    if setting == "quarters":
        img = y.view(-1, 28, 28)
        return [img[:, r:r + 14, c:c + 14].reshape(-1, 196) for r in (0, 14) for c in (0, 14)]
    if setting == "incoming":
        out = []
        for _ in range(views_cfg["n_views"]):
            seen = torch.rand(y.shape, generator=generator, device=y.device) < views_cfg["reveal_fraction"]
            out.append(torch.where(seen, y, torch.full_like(y, 0.5)))
        return out
    face = y.clone()
    face[:, :, y.shape[2] // 2:, :] = 0.5
    return [attrs.float() * 2 - 1, face]


def observed_pixels(views_cfg: dict, views: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """1 where a target pixel is shown by a present view, else 0 (the target's shape, batch first).

    A prediction must agree with its views there whatever else it does (the observed-pixel error).
    quarters: the present quarters; incoming: pixels revealed by a present view (a hidden pixel is exactly 0.5,
    which no uint8 / 255 value is); attr-face: the kept upper half when the face view is present.
    """
    setting = views_cfg["setting"]
    if setting == "quarters":
        b = mask.shape[0]
        grid = mask.view(b, 2, 1, 2, 1).expand(b, 2, 14, 2, 14)        # quarter (row, col) -> its 14x14 pixels
        return grid.reshape(b, 784).clone()
    if setting == "incoming":
        seen = torch.stack([(v != 0.5).float() for v in views])           # [K, B, 784]
        return (seen * mask.t()[:, :, None]).amax(0)
    face = views[1]
    upper = torch.zeros_like(face)
    upper[:, :, : face.shape[2] // 2, :] = 1
    return upper * mask[:, 1, None, None, None]


class ViewData:
    """Train and test targets of one experiment (MNIST digits or CelebA faces), as uint8 arrays."""

    def __init__(self, dataset: str, profile: str, views_cfg: dict):
        self.dataset, self.views_cfg = dataset, views_cfg
        if dataset == "mnist":
            arrays = load_npz(paths.processed_files(profile, "mnist")[0], ["train", "test"])
            self.train, self.test = arrays["train"], arrays["test"]
            self.train_attrs = self.test_attrs = None
            self.image_size = None
        elif dataset == "celeba":
            path = paths.processed_files(profile, "celeba")[0]
            arrays = load_npz(path, ["train_images", "train_attrs", "test_images", "test_attrs"])
            self.train, self.test = arrays["train_images"], arrays["test_images"]
            self.train_attrs, self.test_attrs = arrays["train_attrs"], arrays["test_attrs"]
            self.image_size = int(self.train.shape[-1])
        else:
            raise ConfigError(f"MV-BiGAN has views for datasets mnist and celeba, not {dataset!r}")
        if len(self.train) == 0 or len(self.test) == 0:
            raise ConfigError(f"{dataset}: empty train or test split; preprocess it with more images")

    def specs(self):
        return specs(self.views_cfg, self.image_size)

    def to_target(self, x: np.ndarray, device) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32).div_(255.0)
        return t.reshape(len(x), -1) if self.dataset == "mnist" else t

    def train_batch(self, seed: int, step: int, batch_size: int, device):
        idx = np.random.default_rng([seed, step]).integers(0, len(self.train), batch_size)
        attrs = None if self.train_attrs is None else torch.from_numpy(self.train_attrs[idx]).to(device)
        return self.to_target(self.train[idx], device), attrs

    def test_examples(self, idx: np.ndarray, device):
        attrs = None if self.test_attrs is None else torch.from_numpy(self.test_attrs[idx]).to(device)
        return self.to_target(self.test[idx], device), attrs
