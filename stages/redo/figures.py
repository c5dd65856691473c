"""Chapter 5 figures, drawn by ``python -m stages.figures`` (kinds declared in stages/redo/__init__.py).

- redo-redraws (Figs 5.4, 5.5): per test image a row: input, ground truth, inferred regions, then
  ``n_redraws`` redraws of each region; column j of region k uses the same z_k for every row.
- redo-extremes (Figs 5.7-5.9): six blocks of three rows (input, ground truth, prediction): best by
  accuracy, best by IoU, two random blocks, worst by accuracy, worst by IoU (run 0, test split).
- redo-supervised-curve (Fig 5.6): supervised test score against N (log scale) with ReDO's score as a line.
Captions quote the experiment's measured scores, so a dataset without a thesis table row (colored-2-MNIST)
still reports its numbers.
"""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np

from stages import paths
from stages.datasets.arrays import load_npz
from stages.errors import DataError
from stages.metrics.segmentation import hard_regions
from stages.plotting import png_bytes, render_grid
from stages.redo.files import segmentation_file
from stages.registry import experiment_config

PALETTE = np.array([[255, 255, 255], [30, 30, 30], [220, 60, 40], [40, 120, 220], [60, 180, 80], [230, 180, 30]], np.uint8)


def _labels_rgb(labels: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(labels) % len(PALETTE)]


def _metrics(profile: str, exp: str) -> dict:
    path = paths.metrics(profile, exp)
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is missing or corrupt ({exc}): rerun its evaluate stage.") from exc


def _score_text(m: dict) -> str:
    parts = []
    for col, entry in m["metrics"].items():
        if entry.get("status") == "ok":
            spread = f" ± {entry['std']:.3f}" if entry.get("std") is not None else ""
            parts.append(f"{col} {entry['mean']:.3f}{spread}")
    return ", ".join(parts) + f" (mean{' ± std' if m.get('runs', 1) > 1 else ''} over {m.get('runs', 1)} run(s))"


def redraws(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    exp = spec["experiments"]["main"]
    cfg = experiment_config(params, exp, profile)
    # torch only for the kinds that need a network (Fig 5.6's curve is drawn without importing it).
    import torch

    from stages.redo.data import SegmentationData, to_tensor
    from stages.redo.train import load_redo

    data = SegmentationData(cfg, profile)
    model, _ = load_redo(paths.checkpoint(profile, exp, 0), torch.device("cpu"))
    n_rows, n_draws = spec.get("n_rows", 4), spec.get("n_redraws", 4)
    test_x, test_y = data.images["test"], data.masks["test"]
    idx = np.linspace(0, len(test_x) - 1, min(n_rows, len(test_x))).round().astype(int)
    gen = torch.Generator().manual_seed(spec.get("seed", 0))
    z = torch.randn(n_draws, model.n_regions, model.z_dim, generator=gen)   # column j: the same z for every row
    x = to_tensor(test_x[idx], "cpu")
    with torch.no_grad():
        masks = model.mask_net(x)
        cols = []
        for j in range(n_draws):
            drawn = model.draw_regions(masks, z[j:j + 1].expand(len(idx), -1, -1))
            cols.append(model.composites(x, masks, drawn))                  # [B, n, 3, H, W]
    to_u8 = lambda t: ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    regions = hard_regions(masks.numpy())   # the evaluation's rule (>= 0.5 for two regions)
    rows = []
    for r, i in enumerate(idx):
        row = [test_x[i], _labels_rgb(test_y[i]), _labels_rgb(regions[r] + 1)]
        row += [to_u8(cols[j][r, k]) for k in range(model.n_regions) for j in range(n_draws)]
        rows.append((f"test #{i}", row))
    names = ["input", "ground truth", "masks"] + [f"region {k + 1} #{j + 1}" for k in range(model.n_regions)
                                                  for j in range(n_draws)]
    m = _metrics(profile, exp)
    merged = cfg["train"].get("merge_datasets", [])
    source = f"Test images of {' + '.join([cfg['dataset'], *merged])} (one model). " if merged else ""
    caption = (source + f"Each row: a test image, its ground truth, the inferred regions (run 0, kept on validation IoU), "
               f"then {n_draws} redraws of each of the {model.n_regions} regions; every column uses one z for all "
               f"rows. Scores of this experiment: {_score_text(m)}. Profile {profile}.")
    return render_grid(rows, names), caption


def extremes(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    exp = spec["experiments"]["main"]
    cfg = experiment_config(params, exp, profile)
    from stages.redo.data import SegmentationData

    data = SegmentationData(cfg, profile)
    seg = load_npz(segmentation_file(profile, exp), ["test_regions", "test_acc", "test_iou"])
    k = min(spec.get("n_examples", 4), len(seg["test_acc"]))
    rng = np.random.default_rng(spec.get("seed", 0))
    blocks = [("best Acc", np.argsort(-seg["test_acc"], kind="stable")[:k]),
              ("best IoU", np.argsort(-seg["test_iou"], kind="stable")[:k]),
              ("random", rng.choice(len(seg["test_acc"]), k, replace=False)),
              ("random", rng.choice(len(seg["test_acc"]), k, replace=False)),
              ("worst Acc", np.argsort(seg["test_acc"], kind="stable")[:k]),
              ("worst IoU", np.argsort(seg["test_iou"], kind="stable")[:k])]
    rows, gaps = [], set()
    for name, ids in blocks:
        rows.append((f"{name}: input", [data.images["test"][i] for i in ids]))
        rows.append((f"{name}: ground truth", [_labels_rgb(data.masks["test"][i]) for i in ids]))
        rows.append((f"{name}: prediction", [_labels_rgb(seg["test_regions"][i] + 1) for i in ids]))
        gaps.add(len(rows) - 1)
    m = _metrics(profile, exp)
    caption = (f"Test images of run 0 grouped in blocks of input / ground truth / predicted regions (region colours "
               f"are arbitrary: the score uses the best permutation per image). Scores: {_score_text(m)}. "
               f"Profile {profile}.")
    return render_grid(rows, gap_after=gaps), caption


def supervised_curve(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    sup = _metrics(profile, spec["experiments"]["main"])
    redo = [_metrics(profile, e) for e in spec["experiments"].get("baselines", [])]
    ns = [p["n_labelled"] for p in sup["curve"]]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=100)
    for ax, metric in zip(axes, ("Acc", "IoU")):
        mean = np.array([p[metric]["mean"] for p in sup["curve"]])
        std = np.array([p[metric]["std"] or 0.0 for p in sup["curve"]])
        ax.errorbar(ns, mean, yerr=std, marker="o", label="supervised F")
        for r in redo:
            entry = r["metrics"][f"{metric}_test"]
            if entry.get("status") == "ok":
                ax.axhline(entry["mean"], color="C3", ls="--", label=f"ReDO ({r['dataset']}, unsupervised)")
        ax.set_xscale("log")
        ax.set_xlabel("labelled training images N")
        ax.set_ylabel(f"test {metric}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    caption = (f"Mask network F trained with per-pixel cross-entropy on N labelled images ({sup['pool']} split), "
               f"{sup['dataset']} test split, N in {ns}; dashed: ReDO's test score. Profile {profile}.")
    return png_bytes(fig), caption
