"""Chapter 3.2 figures, drawn by ``python -m stages.figures --figure fig-3-11 --profile smoke``.

- video-comparison (Figs 3.11-3.13, 3.16, 3.27): conditioning frames, ground truth, each baseline's best
  sample, then the main model's best, worst and a random sample (selection by the figure's metric).
- latent-interpolation (Fig 3.14): two single-digit trajectories x^s and x^t, their reconstructions, and
  sequences decoded from linear interpolations of the inferred initial state h1; each trajectory is drawn
  as its frames superimposed, later frames brighter.
- content-swap (Figs 3.15, 3.30-3.35): appearance from one test video, motion from another. Top row: x^t,
  whose dynamics (h_1 and z, posterior means) are inferred. Bottom: the conditioning frames of x^s, which
  give the content w (its last nt_inf frames) and the skip-connection maps (its last conditioning frame),
  then the decoded video, which should keep x^s's appearance and follow x^t's motion.
"""
from __future__ import annotations

import h5py
import numpy as np

from stages import paths
from stages.datasets.arrays import load_npz
from stages.errors import ConfigError, DataError
from stages.plotting import render_grid
from stages.registry import dataset_config, experiment_config


def _slots(frames: np.ndarray, n_slots: int, offset: int = 0) -> list[np.ndarray | None]:
    """Frames [T, C, H, W] placed from slot ``offset`` in a row of ``n_slots`` (None: empty slot)."""
    return [None] * offset + list(frames) + [None] * (n_slots - offset - len(frames))


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
            rows.append((f"#{i} conditioning", _slots(videos[i, :n_cond], n_slots)))
            rows.append(("ground truth", _slots(videos[i, n_cond:n_slots], n_slots, n_cond)))
            for e in baselines:
                rows.append((f"{label(e)} best", _slots(files[e][f"videos/best_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} best", _slots(files[main][f"videos/best_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} worst", _slots(files[main][f"videos/worst_{metric}"][i], n_slots, n_cond)))
            rows.append((f"{label(main)} random", _slots(files[main]["videos/random"][i, 0], n_slots, n_cond)))
    finally:
        for h5 in files.values():
            h5.close()
    caption = (f"{n_cond} conditioning frames, then {n_pred} predicted frames. Best and worst of "
               f"{proto['n_samples']} samples by {metric} (mean over predicted frames); random = first sample. "
               f"Profile {profile}.")
    per_example = len(rows) // len(idx)
    return render_grid(rows, gap_after={r for r in range(len(rows)) if (r + 1) % per_example == 0}), caption


def _superimpose(frames: np.ndarray) -> np.ndarray:
    """[T, H, W] float in [0,1] -> one image, frame t weighted by (t+1)/T so that motion reads left to right."""
    weights = (np.arange(frames.shape[0]) + 1) / frames.shape[0]
    return (frames * weights[:, None, None]).max(axis=0)


def _checkpoint_tools():
    """torch and the model helpers, imported only by the kinds that draw from a checkpoint (a figure drawn
    from the kept samples does not pay torch's import)."""
    import torch

    from stages.checkpoints import load_model
    from stages.runtime import select_device
    from stages.video.data import to_float_video, to_uint8_video

    torch.manual_seed(0)
    return torch, load_model, select_device, to_float_video, to_uint8_video


def latent_interpolation(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    from stages.datasets.smmnist import single_digit_trajectory

    torch, load_model, select_device, to_float_video, _ = _checkpoint_tools()

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
    names = ["x^s", "rec. x^s", *[f"α={a:.2f}" for a in alphas.tolist()], "rec. x^t", "x^t"]
    tiles = [(_superimpose(c[:, 0].float().cpu().numpy()) * 255).round().astype(np.uint8) for c in cols]
    caption = (f"Columns: {', '.join(names)}. {n_frames} frames superimposed per column (later frames brighter); "
               f"content w from x^s; z at the prior means. Profile {profile}.")
    return render_grid([("h1 interpolation", tiles)], names), caption


def content_swap(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    main = spec["experiments"]["main"]
    cfg = experiment_config(params, main, profile)
    if cfg["family"] != "srvp":
        raise ConfigError(f"figure kind content-swap needs an SRVP experiment, {main} is {cfg['family']}")
    torch, load_model, select_device, to_float_video, to_uint8_video = _checkpoint_tools()
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
    rows = [(f"dynamics: #{t}", list(videos[t])),
            (f"content: #{s} | swap", list(videos[s, :n_cond]) + list(to_uint8_video(swapped[0, n_cond:])))]
    caption = (f"Top: test video #{t}, whose dynamics (h_1 and z, posterior means) drive the bottom row. Bottom left: "
               f"the {n_cond} conditioning frames of test video #{s}, which give the content w and the skip maps; "
               f"bottom right: the decoded frames {n_cond + 1}-{n_total}. Profile {profile}.")
    return render_grid(rows), caption
