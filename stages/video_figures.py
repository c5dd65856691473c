"""Content swap (thesis Figs 3.15 and 3.30-3.35): appearance from one test video, motion from another.

Top row: x^t, the video whose dynamics (h_1 and z, posterior means) are inferred. Bottom left: the
conditioning frames of x^s, which give the content w (its last nt_inf frames) and the skip-connection
maps (its last conditioning frame). Bottom right: the decoded video, which should keep x^s's appearance
and follow x^t's motion. Colour videos are drawn in colour.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages import paths  # noqa: E402
from stages.errors import ConfigError  # noqa: E402
from stages.registry import experiment_config  # noqa: E402
from stages.training import load_model, load_npz, select_device, to_float_video, to_uint8_video  # noqa: E402

GAP = 2


def _row(frames: np.ndarray, n_slots: int, offset: int = 0) -> np.ndarray:
    """uint8 [T, C, H, W] -> RGB row [H, n_slots * (W + GAP), 3] with frames from slot ``offset``."""
    t, c, h, w = frames.shape
    rgb = np.repeat(frames, 3, axis=1) if c == 1 else frames
    row = np.full((h, n_slots * (w + GAP) - GAP, 3), 255, np.uint8)
    cols = (offset + np.arange(t))[:, None] * (w + GAP) + np.arange(w)  # [T, W] target columns, one gather
    row[:, cols.reshape(-1)] = rgb.transpose(2, 0, 3, 1).reshape(h, t * w, 3)
    return row


def render_rows(rows: list[tuple[str, np.ndarray]]) -> bytes:
    width = max(r.shape[1] for _, r in rows)
    blocks = []
    for _, r in rows:
        blocks.append(np.pad(r, ((0, GAP * 2), (0, width - r.shape[1]), (0, 0)), constant_values=255))
    canvas = np.concatenate(blocks)
    dpi, scale = 100, 2.0
    fig_w, fig_h = 2.2 + width / dpi * scale, 0.2 + canvas.shape[0] / dpi * scale
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([2.0 / fig_w, 0.1 / fig_h, 1 - 2.1 / fig_w, 1 - 0.2 / fig_h])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    y = 0
    for label, r in rows:
        ax.text(-8, y + r.shape[0] / 2, label, ha="right", va="center", fontsize=11)
        y += r.shape[0] + GAP * 2
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def content_swap(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    main = spec["experiments"]["main"]
    cfg = experiment_config(params, main, profile)
    if cfg["family"] != "srvp":
        raise ConfigError(f"figure kind content-swap needs an SRVP experiment, {main} is {cfg['family']}")
    proto = cfg["protocol"]
    n_cond, n_total = proto["n_cond"], proto["n_cond"] + proto["n_pred"]
    videos = load_npz(paths.processed_files(profile, cfg["dataset"])[0], ["videos"])["videos"][:, :n_total]
    device = select_device("auto")
    model, _ = load_model(paths.checkpoint(profile, main), device)
    rng = np.random.default_rng(spec.get("seed", 0))
    s, t = rng.choice(len(videos), size=2, replace=False)
    with torch.no_grad():
        xs, xt = to_float_video(videos[[s]], device), to_float_video(videos[[t]], device)
        w = model.content(xs[:, :n_cond])
        swapped = model.reconstruct(xt, w=w, skip_frame=xs[:, n_cond - 1] if model.skip else None)
    rows = [(f"dynamics: #{t}", _row(videos[t], n_total)),
            (f"content: #{s} | swap", np.minimum(_row(videos[s, :n_cond], n_total),  # white = empty slot
                                                  _row(to_uint8_video(swapped[0, n_cond:]), n_total, n_cond)))]
    caption = (f"Top: test video #{t}, whose dynamics (h_1 and z, posterior means) drive the bottom row. Bottom left: "
               f"the {n_cond} conditioning frames of test video #{s}, which give the content w and the skip maps; "
               f"bottom right: the decoded frames {n_cond + 1}-{n_total}. Profile {profile}.")
    return render_rows(rows), caption
