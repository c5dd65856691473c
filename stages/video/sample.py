"""Chapter 3.2: draw the protocol's N futures per test sequence and score every one of them.

``python -m stages.sample --experiment srvp-smmnist --profile smoke`` writes samples.h5:

    scores/<METRIC>        float32 [N_seq, N_samples, N_pred]   per-frame score of every sample
    videos/best_<METRIC>   uint8   [N_seq, N_pred, C, H, W]     best sample per metric (time mean)
    videos/worst_<METRIC>  uint8   [N_seq, N_pred, C, H, W]
    videos/random          uint8   [N_seq, N_random, N_pred, C, H, W]   the first samples (i.i.d. draws)

Keeping all 100 futures of every test sequence would take tens of GB at paper scale, so the samples
are scored as they are drawn and only the ones that figures and FVD need are kept.
"""
from __future__ import annotations

from functools import partial

import h5py
import numpy as np
import torch
from tqdm import tqdm

from stages import paths
from stages.checkpoints import load_model
from stages.datasets.arrays import load_npz
from stages.errors import DataError, atomic_path, require_free_space
from stages.metrics.frame import psnr_per_frame, ssim_per_frame
from stages.metrics.protocol import HIGHER_IS_BETTER, select_best, select_worst
from stages.registry import experiment_config
from stages.runtime import select_device
from stages.video.data import METRIC_CHUNK, METRIC_DTYPE, sample_futures, to_float_video, to_uint8_video

TEST_SEED = 1  # as the SRVP test script


def frame_scorers(metrics: list[str], device: torch.device) -> dict:
    """Per-frame scoring functions for the protocol's metrics (FVD is computed later, on whole videos)."""
    scorers = {}
    for name in metrics:
        if name == "PSNR":
            scorers[name] = partial(psnr_per_frame, chunk_frames=METRIC_CHUNK, dtype=METRIC_DTYPE)
        elif name == "SSIM":
            scorers[name] = partial(ssim_per_frame, chunk_frames=METRIC_CHUNK, dtype=METRIC_DTYPE)
        elif name == "LPIPS":
            from stages.metrics.lpips import LPIPSAlex

            scorers[name] = LPIPSAlex(device=device)
    return scorers


def sample(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto = cfg["protocol"]
    device = select_device(args.device)
    n_cond, n_pred, n_samples = proto["n_cond"], proto["n_pred"], proto["n_samples"]
    n_random = min(proto.get("n_random", 1), n_samples)
    test_path = paths.processed_files(profile, cfg["dataset"])[0]
    videos = load_npz(test_path, ["videos"])["videos"]
    if videos.ndim != 5 or videos.shape[1] < n_cond + n_pred:
        raise DataError(f"{test_path}: test videos have shape {videos.shape}; the protocol needs "
                        f"[N, >= {n_cond + n_pred}, C, H, W]. Delete it and rerun its preprocess stage.")
    model, ckpt = load_model(paths.checkpoint(profile, args.experiment), device)
    scorers = frame_scorers([m for m in proto["metrics"] if m != "FVD"], device)

    n_seq = videos.shape[0]
    frame_shape = videos.shape[2:]
    scores = {m: np.empty((n_seq, n_samples, n_pred), np.float32) for m in scorers}
    kept = {f"{kind}_{m}": np.empty((n_seq, n_pred, *frame_shape), np.uint8)
            for m in scorers for kind in ("best", "worst")}
    kept["random"] = np.empty((n_seq, n_random, n_pred, *frame_shape), np.uint8)

    batch = proto.get("batch_size", 16)
    with tqdm(total=n_seq, desc=f"sample {args.experiment}", unit="seq", dynamic_ncols=True) as bar:
        for b, start in enumerate(range(0, n_seq, batch)):
            sl = slice(start, min(start + batch, n_seq))
            x = to_float_video(videos[sl, : n_cond + n_pred], device)
            pred = sample_futures(model, x[:, :n_cond], n_pred, n_samples, TEST_SEED * 100_003 + b, device)
            target = x[:, n_cond:].unsqueeze(1).expand_as(pred)
            rows = torch.arange(pred.shape[0])
            for name, score in scorers.items():
                s = score(pred, target).float().cpu().numpy()  # [b, N, T]
                scores[name][sl] = s
                best = torch.as_tensor(select_best(s, HIGHER_IS_BETTER[name], name)[1])
                worst = torch.as_tensor(select_worst(s, HIGHER_IS_BETTER[name], name)[1])
                kept[f"best_{name}"][sl] = to_uint8_video(pred[rows, best])
                kept[f"worst_{name}"][sl] = to_uint8_video(pred[rows, worst])
            kept["random"][sl] = to_uint8_video(pred[:, :n_random])
            bar.update(sl.stop - sl.start)

    out = paths.samples(profile, args.experiment)
    # HDF5 can crash rather than raise when the disk fills up: check first that the scores and the
    # gzip-compressed videos (a quarter of their raw size is a generous estimate) fit.
    require_free_space(out, sum(a.nbytes for a in scores.values()) + sum(a.nbytes for a in kept.values()) // 4 + 2**20)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs.update({"experiment": args.experiment, "profile": profile, "n_cond": n_cond,
                             "n_pred": n_pred, "n_samples": n_samples, "test_set": test_path})
            if ckpt.get("weights_source"):  # imported, not trained: the report names the file (evaluate)
                h5.attrs["weights_source"] = ckpt["weights_source"]
            for name, arr in scores.items():
                h5.create_dataset(f"scores/{name}", data=arr)
            for name, arr in kept.items():
                h5.create_dataset(f"videos/{name}", data=arr, compression="gzip", compression_opts=4)
    print(f"wrote {out}: {n_seq} sequences x {n_samples} samples, metrics {sorted(scorers)}")
    return 0

