"""Qualitative figures: ``python -m stages.figures --figure fig-3-11 --profile smoke``.

Writes reports/figures/<figure>.png and a JSON sidecar (figure number, title, caption) for the report.
Kinds (params.yaml `figures:`):
- video-comparison (Figs 3.11 / 3.16): conditioning frames, ground truth, each baseline's best sample,
  then the main model's best, worst and a random sample (selection by the figure's metric).
- latent-interpolation (Fig 3.14): two single-digit trajectories x^s and x^t, their reconstructions,
  and sequences decoded from linear interpolations of the inferred initial state h1; each trajectory is
  drawn as its frames superimposed, later frames brighter.
"""
from __future__ import annotations

import io

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages import paths  # noqa: E402
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import DataError, ConfigError, run_cli, write_bytes_atomic, write_json_atomic  # noqa: E402
from stages.registry import dataset_config, experiment_config  # noqa: E402
from stages.training import load_model, load_npz, select_device, to_float_video  # noqa: E402

GAP = 2  # pixels between frames


def _strip(frames: np.ndarray, n_slots: int, offset: int = 0) -> np.ndarray:
    """Frames [T, C, H, W] uint8 -> one grey image row with ``n_slots`` slots, frames placed from ``offset``."""
    t, _, h, w = frames.shape
    row = np.full((h, n_slots * (w + GAP) - GAP), 255, np.uint8)
    gray = frames.max(axis=1) if frames.shape[1] == 3 else frames[:, 0]  # figures are for 1-channel data here
    for i in range(t):  # at most a few dozen frames, once per figure: not a hot path
        x0 = (offset + i) * (w + GAP)
        row[:, x0: x0 + w] = gray[i]
    return row


def _render(rows: list[tuple[str, np.ndarray]], column_labels: list[tuple[float, str]] = ()) -> bytes:
    """Stack labelled image rows into one PNG (deterministic bytes: no timestamps or software tag).

    ``column_labels``: (x centre in pixels, text) pairs written above the first row.
    """
    width = max(r.shape[1] for _, r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=255) for _, r in rows]
    heights = [r.shape[0] for r in padded]
    canvas = np.concatenate([np.vstack([r, np.full((GAP * 2, width), 255, np.uint8)]) for r in padded])
    dpi = 100
    fig_w = 2.2 + width / dpi * 1.6
    top = 0.35 if column_labels else 0.1
    fig_h = 0.1 + top + canvas.shape[0] / dpi * 1.6
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([2.0 / fig_w, 0.1 / fig_h, 1 - 2.1 / fig_w, 1 - (0.1 + top) / fig_h])
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    for x, text in column_labels:
        ax.text(x, -4, text, ha="center", va="bottom", fontsize=10)
    y = 0
    for (label, _), h in zip(rows, heights):
        ax.text(-8, y + h / 2, label, ha="right", va="center", fontsize=11)
        y += h + GAP * 2
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _read_samples(path: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path} is missing or corrupt ({exc}): rerun its sample stage.") from exc


def video_comparison(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    main = spec["experiments"]["main"]
    baselines = spec["experiments"].get("baselines", [])
    metric = spec.get("select_metric", "PSNR")
    cfg = experiment_config(params, main, profile)
    proto = cfg["protocol"]
    n_cond, n_pred = proto["n_cond"], proto["n_pred"]
    videos = load_npz(paths.processed_files(profile, cfg["dataset"])[0], ["videos"])["videos"]
    n_slots = n_cond + n_pred
    strip, render = _strip, _render
    if videos.shape[2] == 3:  # colour datasets (Human3.6M, BAIR) are drawn in colour
        from stages.video_figures import _row as strip, render_rows as render
    label = lambda e: (params["experiments"][e].get("report") or {}).get("model", e)  # noqa: E731
    files = {e: _read_samples(paths.samples(profile, e)) for e in [main, *baselines]}
    try:
        for e, h5 in files.items():
            if f"videos/best_{metric}" not in h5:
                raise DataError(f"{paths.samples(profile, e)} has no best_{metric} videos: add {metric} to its protocol.")
        # Deterministic choice of examples spread over the test set.
        idx = np.linspace(0, videos.shape[0] - 1, spec.get("n_examples", 2)).round().astype(int)
        rows = []
        for i in idx:
            rows.append((f"#{i} conditioning", strip(videos[i, :n_cond], n_slots)))
            rows.append(("ground truth", strip(videos[i, n_cond:n_slots], n_slots, n_cond)))
            for e in baselines:
                rows.append((f"{label(e)} best", strip(files[e][f"videos/best_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} best", strip(files[main][f"videos/best_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} worst", strip(files[main][f"videos/worst_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} random", strip(files[main]["videos/random"][i, 0], n_slots, n_cond)))
    finally:
        for h5 in files.values():
            h5.close()
    caption = (f"{n_cond} conditioning frames, then {n_pred} predicted frames. Best and worst of "
               f"{proto['n_samples']} samples by {metric} (mean over predicted frames); random = first sample. "
               f"Profile {profile}.")
    return render(rows), caption


def _superimpose(frames: np.ndarray) -> np.ndarray:
    """[T, H, W] float in [0,1] -> one image, frame t weighted by (t+1)/T so that motion reads left to right."""
    weights = (np.arange(frames.shape[0]) + 1) / frames.shape[0]
    return (frames * weights[:, None, None]).max(axis=0)


def latent_interpolation(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    from stages.datasets.smmnist import single_digit_trajectory

    main = spec["experiments"]["main"]
    cfg = experiment_config(params, main, profile)
    ds = dataset_config(params, cfg["dataset"], profile)
    digits = load_npz(paths.processed_files(profile, ds["digits_from"])[0], ["test"])["test"]
    device = select_device("auto")
    model, _ = load_model(paths.checkpoint(profile, main), device)
    rng = np.random.default_rng(spec.get("seed", 0))
    digit = digits[rng.integers(len(digits))]
    n_frames, n_steps = spec.get("n_frames", 15), spec.get("n_steps", 5)
    pair = np.stack([single_digit_trajectory(digit, n_frames, rng=rng, frame_size=ds["frame_size"],
                                             max_speed=ds["max_speed"])[0] for _ in range(2)])  # [2, T, 1, H, W]
    with torch.no_grad():
        x = to_float_video(pair, device)
        w = model.content(x)
        h1 = model.infer_initial_state(x)
        alphas = torch.linspace(0, 1, n_steps, device=device)
        h = torch.stack([(1 - a) * h1[0] + a * h1[1] for a in alphas])
        decoded = model.decode_from_initial_state(h, w[:1].expand(n_steps, -1), n_frames, sample=False)
        recon = model.reconstruct(x)
    cols = [x[0], recon[0], *decoded, recon[1], x[1]]
    names = ["$x^s$", "rec. $x^s$", *[f"α={a:.2f}" for a in alphas.tolist()], "rec. $x^t$", "$x^t$"]
    tiles = [(_superimpose(c[:, 0].float().cpu().numpy()) * 255).round().astype(np.uint8) for c in cols]
    h_px, w_px = tiles[0].shape
    row = np.full((h_px, len(tiles) * (w_px + GAP) - GAP), 255, np.uint8)
    for i, tile in enumerate(tiles):
        row[:, i * (w_px + GAP): i * (w_px + GAP) + w_px] = tile
    caption = ("Columns: " + ", ".join(n.replace("$", "") for n in names)
               + f". {n_frames} frames superimposed per column (later frames brighter); content w from x^s; "
               f"z at the prior means. Profile {profile}.")
    centres = [i * (w_px + GAP) + w_px / 2 for i in range(len(tiles))]
    return _render([("h1 interpolation", row)], list(zip(centres, names))), caption


# Figure kind -> function(params, profile, spec) -> (PNG bytes, caption). Other chapters register theirs
# by name ("module:function") so their plotting code is imported only when drawn.
KINDS = {"video-comparison": video_comparison, "latent-interpolation": latent_interpolation,
         "mvbigan-views": "stages.mvbigan.figures:mvbigan_views",
         "mvbigan-kl-compare": "stages.mvbigan.figures:mvbigan_kl_compare",
         "mvbigan-incoming": "stages.mvbigan.figures:mvbigan_incoming",
         "mvbigan-celeba": "stages.mvbigan.figures:mvbigan_celeba",
         "content-swap": "stages.video_figures:content_swap"}
KINDS.update({"redo-redraws": "stages.redo.figures:redraws", "redo-extremes": "stages.redo.figures:extremes",
              "redo-supervised-curve": "stages.redo.figures:supervised_curve"})


def parse_args(argv):
    p = stage_parser("figures", __doc__)
    p.add_argument("--figure", required=True, help="figure id from params.yaml `figures:` (e.g. fig-3-11)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    spec = (params.get("figures") or {}).get(args.figure)
    if spec is None:
        raise ConfigError(f"unknown figure '{args.figure}'; known: {sorted(params.get('figures') or {})}")
    torch.manual_seed(0)
    draw = KINDS[spec["kind"]]
    png, caption = (resolve_target(draw) if isinstance(draw, str) else draw)(params, profile, spec)
    png_path, json_path = paths.figure_files(args.figure)
    # `number` names figures that share a thesis number (e.g. Fig 5.4 for each dataset): "5.4 (Flowers)".
    number = spec.get("number") or args.figure.removeprefix("fig-").replace("-", ".")
    write_json_atomic(json_path, {"figure": number, "title": spec["title"], "caption": caption,
                                  "experiment": spec["experiments"]["main"], "profile": profile})
    write_bytes_atomic(png_path, png)
    print(f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
