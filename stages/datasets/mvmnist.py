"""Multi-view MNIST (Fig 4.11, our reading of the thesis's toy data): content = one digit image, view =
rotation, scale, shift, stroke width and colours, rendered 3x32x32 from the processed MNIST digits.

Each digit of a split is rendered ``n_views`` times with independent view parameters drawn from a
generator seeded by (seed, split); every digit is one content. The rendering is batched: one affine grid
sample for rotation / scale / shift, max pooling for stroke width (dilation, or erosion of the negated
image), then foreground and background colours mixed by the stroke's coverage.
"""
from __future__ import annotations

import numpy as np

from stages import paths
from stages.datasets.arrays import load_npz
from stages.datasets.multiview import write_views
from stages.errors import ConfigError

SIDE = 32


def render_views(digits: np.ndarray, params: dict[str, np.ndarray], side: int = SIDE) -> np.ndarray:
    """uint8 digits [N, 28, 28] and per-image view parameters (arrays of length N: angle (radians), scale,
    dx, dy (fractions of the half side), stroke in {-1, 0, 1}, fg and bg [N, 3] in [0, 1]) -> uint8 [N, 3, side, side]."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(digits.astype(np.float32) / 255.0)[:, None]
    x = F.pad(x, (2, 2, 2, 2))                                             # 32x32 canvas, digit in the middle
    angle, scale = (torch.from_numpy(params[k].astype(np.float32)) for k in ("angle", "scale"))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    shift = torch.from_numpy(np.stack([params["dx"], params["dy"]], 1).astype(np.float32))
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [len(x), 1, side, side], align_corners=False)
    a = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    stroke = torch.from_numpy(params["stroke"].astype(np.int64))[:, None, None, None]
    thick = F.max_pool2d(a, 3, 1, 1)
    thin = -F.max_pool2d(-a, 3, 1, 1)
    a = torch.where(stroke > 0, thick, torch.where(stroke < 0, thin, a)).clamp(0, 1)
    fg = torch.from_numpy(params["fg"].astype(np.float32))[:, :, None, None]
    bg = torch.from_numpy(params["bg"].astype(np.float32))[:, :, None, None]
    img = bg * (1 - a) + fg * a
    return (img * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def draw_view_params(rng: np.random.Generator, n: int, cfg: dict) -> dict[str, np.ndarray]:
    bg = rng.uniform(0, 0.45, (n, 3))
    return {
        "angle": np.deg2rad(rng.uniform(-cfg["max_rotation"], cfg["max_rotation"], n)),
        "scale": rng.uniform(cfg["min_scale"], 1.0, n),
        "dx": rng.uniform(-cfg["max_shift"], cfg["max_shift"], n),
        "dy": rng.uniform(-cfg["max_shift"], cfg["max_shift"], n),
        "stroke": rng.integers(-1, 2, n),
        "fg": rng.uniform(0.55, 1.0, (n, 3)),
        "bg": bg,
    }


def build(digits: dict[str, np.ndarray], cfg: dict) -> dict[str, np.ndarray]:
    """Rendered views of the first ``n_<split>_digits`` digits of each split (every digit = one content)."""
    out = {}
    for k, split in enumerate(("train", "test")):
        source = digits[split][: cfg[f"n_{split}_digits"]]
        if len(source) < cfg[f"n_{split}_digits"]:
            raise ConfigError(f"datasets.mvmnist.n_{split}_digits = {cfg[f'n_{split}_digits']} but the MNIST {split} "
                              f"split has {len(source)} digits: lower it")
        content = np.repeat(np.arange(len(source)), cfg["n_views"])
        rng = np.random.default_rng([cfg["seed"], k])
        out[f"{split}_images"] = render_views(source[content], draw_view_params(rng, len(content), cfg))
        out[f"{split}_content"] = content.astype(np.int64)
    return out


def preprocess(cfg: dict, profile: str) -> str:
    digits = load_npz(paths.processed_files(profile, cfg["digits_from"])[0], ["train", "test"])
    return write_views(profile, "mvmnist", build(digits, cfg), f"{cfg['n_views']} views per MNIST digit")
