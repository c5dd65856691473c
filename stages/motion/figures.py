"""Chapter 4.1 figure ``motion-transfer`` (our "4.2 (results)"; the thesis shows transfer only in videos).

For each model (main, then baselines) and each of ``n_examples`` test windows: the source window, a test
window of the target emotion (DASAE's style exemplar; ASFSAE reads only the label) and the transferred
window, each drawn as ``n_frames`` stick figures side by side. Stick figures come from forward kinematics
(stages/datasets/bvh.py) of the de-normalised joint angles on the dataset's skeleton, the root fixed at the
origin (its horizontal position is not a feature), seen from the front (x, y).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from stages import paths
from stages.checkpoints import load_model
from stages.datasets.bvh import Motion, Skeleton, forward_kinematics
from stages.motion.data import EMOTION, MotionData
from stages.plotting import png_bytes
from stages.registry import experiment_config


def window_positions(window: np.ndarray, meta: dict) -> np.ndarray:
    """[T, D] scaled features -> [T, J, 3] joint positions."""
    lo, hi = meta["feature_min"], meta["feature_max"]
    angles = window * np.where(hi > lo, hi - lo, 1.0) + lo
    orders = [str(o) for o in meta["rotation_orders"]]
    n_joints = len(orders)
    channels = [tuple(f"{a}rotation" for a in o) for o in orders]
    sk = Skeleton([str(n) for n in meta["joint_names"]], meta["parents"], meta["offsets"], channels)
    return forward_kinematics(Motion(sk, 1.0, angles[:, :3 * n_joints].astype(np.float64)))


def _draw(ax, positions: np.ndarray, parents: np.ndarray, n_frames: int, colour: str) -> None:
    frames = np.linspace(0, len(positions) - 1, n_frames).round().astype(int)
    span = np.ptp(positions[..., 0]) + 0.6 * np.ptp(positions[..., 1])
    for k, f in enumerate(frames):
        p = positions[f]
        for j, parent in enumerate(parents):
            if parent >= 0:
                ax.plot([p[j, 0] + k * span, p[parent, 0] + k * span], [p[j, 1], p[parent, 1]], color=colour, lw=1)
    ax.set_aspect("equal")
    ax.set_axis_off()


@torch.no_grad()
def motion_transfer(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    roles = spec["experiments"]
    exps = [roles["main"], *roles.get("baselines", [])]
    n_ex, n_frames = spec.get("n_examples", 2), spec.get("n_frames", 6)
    rng = np.random.default_rng(spec.get("seed", 0))
    fig, axes = plt.subplots(3 * n_ex * len(exps), 1, figsize=(8, 1.3 * 3 * n_ex * len(exps)), squeeze=False)
    row, parts = 0, []
    for exp in exps:
        cfg = experiment_config(params, exp, profile)
        model, _ = load_model(paths.checkpoint(profile, exp), "cpu")
        data = MotionData(cfg["dataset"], profile)
        labels = data.labels["test"][:, EMOTION]
        names = data.emotions
        for i in rng.choice(data.count("test"), n_ex, replace=False):
            source = int(labels[i])
            target = int((source + rng.integers(1, len(names))) % len(names))
            pool = np.flatnonzero(labels == target)
            j = int(rng.choice(pool)) if len(pool) else int(i)
            x, ex = data.windows("test", [i]), data.windows("test", [j])
            cond = model.condition(torch.tensor([target]), model.style_of(ex) if model.kind == "dasae" else None)
            out = model.decode(model.encode(x), cond)
            for win, label, colour in ((x, f"{exp}: source ({names[source]})", "black"),
                                       (ex, f"exemplar ({names[target]})", "tab:blue"),
                                       (out, f"transferred to {names[target]}", "tab:red")):
                ax = axes[row, 0]
                _draw(ax, window_positions(win[0].numpy(), data.meta), data.meta["parents"], n_frames, colour)
                ax.set_title(label, fontsize=8, loc="left")
                row += 1
        parts.append(f"{exp} ({model.kind})")
    fig.tight_layout()
    caption = (f"Emotion transfer on test windows by {', '.join(parts)}, profile {profile}: source, a test window "
               f"of the target emotion (the style exemplar DASAE encodes; ASFSAE reads only the label) and the "
               f"transferred window, {n_frames} evenly spaced frames each, drawn by forward kinematics with the "
               f"root fixed. Not a thesis figure (the thesis shows transfer in videos).")
    return png_bytes(fig), caption
