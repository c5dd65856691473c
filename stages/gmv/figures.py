"""Chapter 4.2 figures, drawn by ``python -m stages.figures`` (kinds declared in stages/gmv/__init__.py).

- gmv-grid (Figs 4.3, 4.7, 4.11): one content code c per row, one view code v per column, so a row shows
  one generated content under several views and a column one view across contents (GANx: one tuple per row).
- conditional-views (Figs 4.9, 4.10, 4.14, 4.15): per test input x (first column), G(E(x), v_j) for
  view codes v_j shared down the column; the main experiment's block, then each baseline's on the same inputs.
"""
from __future__ import annotations

import numpy as np
import torch

from stages import paths
from stages.gmv.data import load_splits, to_float
from stages.gmv.train import load_trained
from stages.plotting import render_grid
from stages.registry import experiment_config


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def same_size(rows: list[tuple[str, list]]) -> list[tuple[str, list]]:
    """Tiles of experiments at different image sizes (3D-Chairs 16 px beside CelebA 32 px at smoke scale)
    enlarged to the largest side by pixel repetition (sides are powers of two), so they share one grid."""
    side = max(t.shape[-1] for _, tiles in rows for t in tiles if t is not None)
    grow = lambda t: t if t is None or t.shape[-1] == side else t.repeat(side // t.shape[-1], -1).repeat(side // t.shape[-2], -2)  # noqa: E731
    return [(label, [grow(t) for t in tiles]) for label, tiles in rows]


@torch.no_grad()
def gmv_grid(params: dict, profile: str, spec: dict):
    exp = spec["experiments"]["main"]
    model = load_trained(paths.checkpoint(profile, exp), "cpu")
    gen = torch.Generator().manual_seed(spec.get("seed", 0))
    rows_n, cols_n = spec.get("n_rows", 4), spec.get("n_cols", 6)
    if model.variant == "ganx":
        tiles = _uint8(model.tuples(torch.randn(rows_n, model.z_dim, generator=gen)))
        rows = [(f"z{i + 1}", list(t)) for i, t in enumerate(tiles)]
        what = f"{model.views} views generated from one noise vector per row"
    else:
        c = torch.randn(rows_n, 1, model.c_dim, generator=gen).expand(-1, cols_n, -1)
        v = torch.randn(1, cols_n, model.v_dim, generator=gen).expand(rows_n, -1, -1)
        out = _uint8(model.render(c.reshape(-1, model.c_dim), v.reshape(-1, model.v_dim)))
        tiles = out.reshape(rows_n, cols_n, *out.shape[1:])
        rows = [(f"c{i + 1}", list(t)) for i, t in enumerate(tiles)]
        what = "one content code c per row, one view code v per column"
    return render_grid(rows), f"{exp} ({profile} profile): {what}."


@torch.no_grad()
def conditional_views(params: dict, profile: str, spec: dict):
    roles = spec["experiments"]
    exps = [roles["main"], *roles.get("baselines", [])]
    cfg = experiment_config(params, roles["main"], profile)
    test = load_splits(cfg, profile)["test"]
    rng = np.random.default_rng(spec.get("seed", 0))
    n_inputs, n_views = spec.get("n_inputs", 4), spec.get("n_views", 5)
    chosen = rng.choice(len(test), min(n_inputs, len(test)), replace=False)
    x = to_float(test.images[chosen], "cpu")
    rows, gaps = [], set()
    for exp in exps:
        model = load_trained(paths.checkpoint(profile, exp), "cpu")
        gen = torch.Generator().manual_seed(spec.get("seed", 0))
        v = torch.randn(n_views, model.v_dim, generator=gen)
        c = model.encode(x)
        out = _uint8(model.render(c.repeat_interleave(n_views, 0), v.repeat(len(x), 1)))
        out = out.reshape(len(x), n_views, *out.shape[1:])
        for i in range(len(x)):
            rows.append((f"{exp}" if i == 0 else "", [test.images[chosen[i]], None, *out[i]]))
        gaps.add(len(rows) - 1)
    labels = ["input x", ""] + [f"v{j + 1}" for j in range(n_views)]
    caption = (f"{', '.join(exps)} ({profile} profile): test inputs (first column) and G(E(x), v) for view codes "
               f"shared down each column; blocks in the order listed.")
    return render_grid(same_size(rows), labels, gap_after=frozenset(sorted(gaps)[:-1])), caption


@torch.no_grad()
def gmv_interpolation(params: dict, profile: str, spec: dict):
    """gmv-interpolation (Figs 4.8, 4.12, 4.13): per experiment and per factor in ``interpolate`` (content,
    view), ``n_rows`` independent rows; a row interpolates that factor linearly between two samples (first
    and last columns) while the other factor stays fixed."""
    roles = spec["experiments"]
    exps = [roles["main"], *roles.get("baselines", [])]
    n_rows, n_steps = spec.get("n_rows", 3), spec.get("n_steps", 7)
    t = torch.linspace(0, 1, n_steps)[None, :, None]
    rows, gaps = [], set()
    for exp in exps:
        model = load_trained(paths.checkpoint(profile, exp), "cpu")
        gen = torch.Generator().manual_seed(spec.get("seed", 0))
        for factor in spec.get("interpolate", ["content", "view"]):
            dim, other = (model.c_dim, model.v_dim) if factor == "content" else (model.v_dim, model.c_dim)
            a, b = torch.randn(n_rows, 1, dim, generator=gen), torch.randn(n_rows, 1, dim, generator=gen)
            moving = ((1 - t) * a + t * b).reshape(-1, dim)
            fixed = torch.randn(n_rows, 1, other, generator=gen).expand(-1, n_steps, -1).reshape(-1, other)
            c, v = (moving, fixed) if factor == "content" else (fixed, moving)
            out = _uint8(model.render(c, v)).reshape(n_rows, n_steps, model.channels, model.image_size, model.image_size)
            rows += [(f"{exp}: {factor}" if i == 0 else "", list(out[i])) for i in range(n_rows)]
            gaps.add(len(rows) - 1)
    caption = (f"{', '.join(exps)} ({profile} profile): each row interpolates one factor linearly between two "
               "sampled values (first and last columns) with the other factor fixed; rows are independent.")
    return render_grid(same_size(rows), gap_after=frozenset(sorted(gaps)[:-1])), caption
