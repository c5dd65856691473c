"""Figures 3.5-3.8 (MV-BiGAN samples), drawn from the trained checkpoints by ``python -m stages.figures``.

Kinds (params.yaml `figures:`):
- mvbigan-views (Fig 3.5): per test digit, rows of 1, 2, 3 (... K-1) quarters: ground truth, the
  provided views (missing quarters grey), then samples.
- mvbigan-kl-compare (Fig 3.6): the same rows for the model with the KL term (top) and without (bottom).
- mvbigan-incoming (Fig 3.7): one view added per row; column 1 is all pixels observed so far (0.5 where
  none), then samples.
- mvbigan-celeba (Fig 3.8): per test face, samples from the attributes only, the incomplete face only,
  and both; the ground truth is at the bottom left of each block.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages import paths  # noqa: E402
from stages.mvbigan.evaluate import nested_mask  # noqa: E402
from stages.mvbigan.views import ViewData, make_views  # noqa: E402
from stages.registry import experiment_config  # noqa: E402
from stages.training import load_model, select_device, step_generator  # noqa: E402

GAP = 2


def _tile(x: torch.Tensor) -> np.ndarray:
    """A 784-vector or a [3, S, S] image in [0, 1] -> uint8 RGB [H, W, 3]."""
    x = x.detach().float().clamp(0, 1).cpu()
    img = x.view(28, 28)[..., None].expand(28, 28, 3) if x.dim() == 1 else x.permute(1, 2, 0)
    return (img.numpy() * 255).round().astype(np.uint8)


def _blank(like: np.ndarray, value: int = 255) -> np.ndarray:
    return np.full_like(like, value)


def grid_png(rows: list[tuple[str, list[np.ndarray]]], gap_after: set[int] = frozenset()) -> bytes:
    """Labelled rows of RGB tiles -> one PNG (deterministic bytes)."""
    h, w = rows[0][1][0].shape[:2]
    n_cols = max(len(t) for _, t in rows)
    lines, ys, y = [], [], 0
    for i, (_, tiles) in enumerate(rows):
        line = np.full((h, n_cols * (w + GAP) - GAP, 3), 255, np.uint8)
        for j, t in enumerate(tiles):
            line[:, j * (w + GAP): j * (w + GAP) + w] = t
        extra = 3 * GAP if i in gap_after else 0
        lines += [line, np.full((GAP + extra, line.shape[1], 3), 255, np.uint8)]
        ys.append(y + h / 2)
        y += h + GAP + extra
    canvas = np.concatenate(lines)
    dpi, scale = 100, max(1.0, 56 / h)
    fig_w = 1.8 + canvas.shape[1] / dpi * scale
    fig_h = 0.2 + canvas.shape[0] / dpi * scale
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([1.7 / fig_w, 0.1 / fig_h, 1 - 1.75 / fig_w, 1 - 0.2 / fig_h])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for (label, _), yc in zip(rows, ys):
        ax.text(-4, yc, label, ha="right", va="center", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _setup(params, profile, exp):
    cfg = experiment_config(params, exp, profile)
    device = select_device("auto")
    model, ckpt = load_model(paths.checkpoint(profile, exp), device)
    data = ViewData(cfg["dataset"], profile, ckpt["views"])
    return model, ckpt, data, device


def _examples(data: ViewData, spec: dict) -> np.ndarray:
    n = min(spec.get("n_examples", 2), len(data.test))
    return np.linspace(0, len(data.test) - 1, n).round().astype(int)


def _quarter_rows(model, data, device, spec, tag=""):
    """Rows of Fig 3.5: ground truth, provided quarters (missing ones grey), samples; k = 1..K-1 views."""
    idx = _examples(data, spec)
    y, _ = data.test_examples(idx, device)
    views = make_views(data.views_cfg, y)
    rows = []
    for i in range(len(idx)):
        for k in range(1, model.n_views):
            mask = nested_mask(len(idx), model.n_views, k, spec.get("seed", 0) + 17, device)[i: i + 1]
            pred = model.predict([v[i: i + 1] for v in views], mask, spec.get("n_samples", 8),
                                 generator=step_generator(spec.get("seed", 0), 100 * i + k, device))[0]
            shown = y[i].view(28, 28).clone()
            for q, (r, c) in enumerate(((0, 0), (0, 14), (14, 0), (14, 14))):
                if mask[0, q] == 0:
                    shown[r:r + 14, c:c + 14] = 0.5
            rows.append((f"{tag}#{idx[i]}, {k} view{'s' * (k > 1)}",
                         [_tile(y[i]), _tile(shown.flatten())] + [_tile(p) for p in pred]))
    return rows


def mvbigan_views(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    model, ckpt, data, device = _setup(params, profile, spec["experiments"]["main"])
    rows = _quarter_rows(model, data, device, spec)
    caption = (f"Columns: ground truth, provided quarters (missing quarters grey), then {spec.get('n_samples', 8)} "
               f"samples. One more quarter per row (random order per digit). lambda = {ckpt['model_config']['lam']:g}. "
               f"Profile {profile}.")
    return grid_png(rows, {r for r in range(len(rows)) if (r + 1) % (model.n_views - 1) == 0}), caption


def mvbigan_kl_compare(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    rows, gaps, lams = [], set(), []
    for tag, exp in (("KL ", spec["experiments"]["main"]), ("no KL ", spec["experiments"]["baselines"][0])):
        model, ckpt, data, device = _setup(params, profile, exp)
        rows += _quarter_rows(model, data, device, spec, tag)
        gaps.add(len(rows) - 1)
        lams.append(ckpt["model_config"]["lam"])
    caption = (f"Top: with the KL term (lambda = {lams[0]:g}); bottom: without it (lambda = {lams[1]:g}). Same digits, "
               f"quarters and order. Columns: ground truth, provided quarters, then samples. Profile {profile}.")
    return grid_png(rows, gaps), caption


def mvbigan_incoming(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    model, ckpt, data, device = _setup(params, profile, spec["experiments"]["main"])
    idx = _examples(data, spec)
    y, _ = data.test_examples(idx, device)
    views = make_views(data.views_cfg, y, generator=step_generator(spec.get("seed", 0), 0, device))
    rows, gaps = [], set()
    for i in range(len(idx)):
        seen = torch.full_like(y[i], 0.5)
        for k in range(1, model.n_views + 1):
            v = views[k - 1][i]
            seen = torch.where(v != 0.5, v, seen)        # pixels revealed by the new view
            mask = torch.zeros(1, model.n_views, device=device)
            mask[0, :k] = 1
            pred = model.predict([w[i: i + 1] for w in views], mask, spec.get("n_samples", 8),
                                 generator=step_generator(spec.get("seed", 0), 100 * i + k, device))[0]
            rows.append((f"#{idx[i]}, {k} view{'s' * (k > 1)}", [_tile(seen)] + [_tile(p) for p in pred]))
        gaps.add(len(rows) - 1)
    frac = data.views_cfg["reveal_fraction"]
    caption = (f"Each view is a 28x28 image in which a random {frac:.0%} of the pixels is observed and the rest is 0.5. "
               f"Column 1: all pixels observed so far; then {spec.get('n_samples', 8)} samples. One more view per "
               f"row. Profile {profile}.")
    return grid_png(rows, gaps), caption


def mvbigan_celeba(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    model, ckpt, data, device = _setup(params, profile, spec["experiments"]["main"])
    idx = _examples(data, spec)
    y, attrs = data.test_examples(idx, device)
    views = make_views(data.views_cfg, y, attrs)
    rows, gaps = [], set()
    masks = {"attributes": [1.0, 0.0], "incomplete face": [0.0, 1.0], "both": [1.0, 1.0]}
    for i in range(len(idx)):
        for j, (name, m) in enumerate(masks.items()):
            mask = torch.tensor([m], device=device)
            pred = model.predict([v[i: i + 1] for v in views], mask, spec.get("n_samples", 8),
                                 generator=step_generator(spec.get("seed", 0), 10 * i + j, device))[0]
            first = _tile(views[1][i]) if m[1] else _blank(_tile(y[i]))
            rows.append((f"#{idx[i]} {name}", [first] + [_tile(p) for p in pred]))
        rows.append(("ground truth", [_tile(y[i])]))
        gaps.add(len(rows) - 1)
    caption = (f"Per face: samples from the 40 attributes only, from the incomplete face only (lower half grey), "
               f"and from both; column 1 shows the provided face view; ground truth bottom left. "
               f"{spec.get('n_samples', 8)} samples per row. lambda = {ckpt['model_config']['lam']:g}. Profile {profile}.")
    return grid_png(rows, gaps), caption
