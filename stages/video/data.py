"""Chapter 3.2's data streams and sampling: training and validation clips, N predicted futures per
clip, and the validation best-of-N PSNR that selects the kept checkpoint.

Every batch is a pure function of (seed, step) and every draw comes from a (seed, step) generator, so a
resumed training replays exactly the steps of an uninterrupted one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stages import paths
from stages.datasets.arrays import load_npz
from stages.datasets.natural import check_same_run
from stages.datasets.smmnist import TrainClipSampler
from stages.datasets.videos import ClipSampler, load_packed
from stages.errors import DataError
from stages.metrics.frame import psnr_per_frame
from stages.runtime import autocast, step_generator


METRIC_CHUNK = 1024  # frames scored at once: bounds the SSIM working set (~200 MB) and stays in cache-friendly sizes
# Scores are computed in float32, the precision of the SRVP evaluation code; float32 stays within 1e-6 of a
# float64 reference on 64x64 frames (tests/test_metrics_frame.py) and is 2-3x faster on CPU.
METRIC_DTYPE = torch.float32


def lr_at(step: int, lr: float, constant_steps: int, decay_steps: int) -> float:
    """SRVP schedule: constant for ``constant_steps``, then linear decay to 0 over ``decay_steps``."""
    if step < constant_steps or decay_steps == 0:
        return lr
    return lr * max(0.0, 1.0 - (step - constant_steps) / decay_steps)


def to_float_video(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [B, T, C, H, W] -> float32 in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(batch)).to(device=device, dtype=torch.float32).div_(255.0)


def to_uint8_video(x: torch.Tensor) -> np.ndarray:
    return (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


class VideoData:
    """Training and validation clips of one experiment (SM-MNIST: generated from the digit splits; KTH,
    Human3.6M, BAIR: windows of the packed train / val videos)."""

    def __init__(self, cfg: dict, dataset_cfg: dict, profile: str):
        if not dataset_cfg.get("digits_from") and dataset_cfg["name"] != "smmnist":
            self._init_natural(cfg, dataset_cfg, profile)
            return
        digits_from = dataset_cfg.get("digits_from", "mnist")
        digits = load_npz(paths.processed_files(profile, digits_from)[0], ["train", "val"])
        train = cfg["train"]
        gen_kwargs = dict(
            n_digits=dataset_cfg["n_digits"], frame_size=dataset_cfg["frame_size"], max_speed=dataset_cfg["max_speed"]
        )
        self.train = TrainClipSampler(digits["train"], n_frames=train["seq_len"], seed=train["seed"], **gen_kwargs)
        proto = cfg.get("protocol") or {}
        self.val_len = proto.get("n_cond", 5) + proto.get("n_pred", 20)
        # Validation clips are fixed once (their own seed), so every validation sees the same videos.
        val_sampler = TrainClipSampler(digits["val"], n_frames=self.val_len, seed=train["seed"] + 7919, **gen_kwargs)
        self.val_batches = [val_sampler.batch(i, train["val_batch_size"]) for i in range(train["val_batches"])]

    def _init_natural(self, cfg: dict, dataset_cfg: dict, profile: str) -> None:
        files = paths.processed_files(profile, dataset_cfg["name"])
        for f in files:
            if not Path(f).is_file():
                raise DataError(f"{f} is missing: run the preprocess stage first (snakemake {f}).")
        check_same_run(files, dataset_cfg["name"])
        _, train_file, val_file = files
        train = cfg["train"]
        proto = cfg.get("protocol") or {}
        self.train = ClipSampler(*load_packed(train_file), n_frames=train["seq_len"], seed=train["seed"])
        # Validation clips: the protocol's length unless the experiment sets val_len (SRVP KTH: 30).
        self.val_len = train.get("val_len") or proto.get("n_cond", 5) + proto.get("n_pred", 20)
        val = ClipSampler(*load_packed(val_file), n_frames=self.val_len, seed=train["seed"] + 7919)
        self.val_batches = [val.batch(i, train["val_batch_size"]) for i in range(train["val_batches"])]

    def train_batch(self, step: int, batch_size: int) -> np.ndarray:
        return self.train.batch(step, batch_size)


@torch.no_grad()
def sample_futures(model, cond: torch.Tensor, n_pred: int, n_samples: int, seed: int,
                   device: torch.device, chunk: int = 64) -> torch.Tensor:
    """``n_samples`` predicted futures per conditioning clip: [B, n_samples, n_pred, C, H, W] in [0, 1].

    Rows are repeated and predicted in chunks of ``chunk`` samples to bound memory; each chunk has its
    own generator so the result does not depend on the device's RNG state.
    """
    b = cond.shape[0]
    out = []
    for start in range(0, n_samples, chunk):
        k = min(chunk, n_samples - start)
        rep = cond.repeat_interleave(k, dim=0)
        with autocast(device):
            pred = model.predict(rep, n_pred, generator=step_generator(seed, start, device))
        out.append(pred.float().clamp(0, 1).view(b, k, *pred.shape[1:]))
    return torch.cat(out, dim=1)


@torch.no_grad()
def validate_psnr(model, batches: list[np.ndarray], n_cond: int, n_samples: int, seed: int,
                  device: torch.device) -> float:
    """Mean over validation clips of the best-of-N PSNR over predicted frames (SRVP model selection)."""
    was_training = model.training
    model.eval()
    scores = []
    for i, batch in enumerate(batches):
        x = to_float_video(batch, device)
        cond, target = x[:, :n_cond], x[:, n_cond:]
        pred = sample_futures(model, cond, target.shape[1], n_samples, seed + i, device)
        psnr = psnr_per_frame(pred, target.unsqueeze(1).expand_as(pred), chunk_frames=METRIC_CHUNK,
                              dtype=METRIC_DTYPE).mean(dim=-1)
        scores.append(psnr.max(dim=1).values.cpu())
    model.train(was_training)
    return float(torch.cat(scores).mean())
