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

import numpy as np
import torch

from stages import paths
from stages.checkpoints import load_model
from stages.mvbigan.evaluate import nested_mask
from stages.mvbigan.views import ViewData, make_views
from stages.plotting import render_grid
from stages.registry import experiment_config
from stages.runtime import select_device, step_generator


def _tile(x: torch.Tensor) -> np.ndarray:
    """A 784-vector or a [3, S, S] image in [0, 1] -> uint8 RGB [H, W, 3]."""
    x = x.detach().float().clamp(0, 1).cpu()
    img = x.view(28, 28)[..., None].expand(28, 28, 3) if x.dim() == 1 else x.permute(1, 2, 0)
    return (img.numpy() * 255).round().astype(np.uint8)


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
    return render_grid(rows, {r for r in range(len(rows)) if (r + 1) % (model.n_views - 1) == 0}), caption


def mvbigan_kl_compare(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    rows, gaps, lams = [], set(), []
    for tag, exp in (("KL ", spec["experiments"]["main"]), ("no KL ", spec["experiments"]["baselines"][0])):
        model, ckpt, data, device = _setup(params, profile, exp)
        rows += _quarter_rows(model, data, device, spec, tag)
        gaps.add(len(rows) - 1)
        lams.append(ckpt["model_config"]["lam"])
    caption = (f"Top: with the KL term (lambda = {lams[0]:g}); bottom: without it (lambda = {lams[1]:g}). Same digits, "
               f"quarters and order. Columns: ground truth, provided quarters, then samples. Profile {profile}.")
    return render_grid(rows, gaps), caption


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
    return render_grid(rows, gaps), caption


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
            first = _tile(views[1][i]) if m[1] else None
            rows.append((f"#{idx[i]} {name}", [first] + [_tile(p) for p in pred]))
        rows.append(("ground truth", [_tile(y[i])]))
        gaps.add(len(rows) - 1)
    caption = (f"Per face: samples from the 40 attributes only, from the incomplete face only (lower half grey), "
               f"and from both; column 1 shows the provided face view; ground truth bottom left. "
               f"{spec.get('n_samples', 8)} samples per row. lambda = {ckpt['model_config']['lam']:g}. Profile {profile}.")
    return render_grid(rows, gaps), caption
