"""What train, sample and figures share: devices, data streams, checkpoints, schedules, validation.

Reproducibility rule: every random draw of a training step comes from a generator seeded by
(seed, step), and every batch is a pure function of (seed, step). A run resumed from its last
saved state therefore replays exactly the steps an uninterrupted run would have taken.
"""
from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from models import build_model
from stages import paths
from stages.datasets.smmnist import TrainClipSampler
from stages.errors import DataError
from stages.metrics.frame import psnr_per_frame


METRIC_CHUNK = 1024  # frames scored at once: bounds the SSIM working set (~200 MB) and stays in cache-friendly sizes
# Scores are computed in float32, the precision of the SRVP evaluation code; float32 stays within 1e-6 of a
# float64 reference on 64x64 frames (tests/test_metrics_frame.py) and is 2-3x faster on CPU.
METRIC_DTYPE = torch.float32


STOPPED_EARLY = 3  # exit status of --stop-after-steps (every trainer): state saved, rerun to resume


def log_jsonl(handle, record: dict) -> None:
    """One JSON line in a run's train_log.jsonl, flushed so a crash loses nothing already logged."""
    handle.write(json.dumps(record, sort_keys=True) + "\n")
    handle.flush()


def truncate_log(path: str | Path, upto, position=lambda record: record.get("step", 0)) -> None:
    """Drop log lines written after the resumed point (``position(record) > upto``), so a resumed run's log
    reads like one uninterrupted run."""
    path = Path(path)
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and position(json.loads(line)) <= upto]
    path.write_text("".join(line + "\n" for line in kept))


def select_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"--device {requested} was asked for but no CUDA device is visible; use --device cpu.")
    return torch.device(requested)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (the thesis used Apex O1 mixed precision); full fp32 on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """A generator whose state depends only on (seed, step): the key to exact resumption."""
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + step) % (2**63))
    return gen


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


def load_npz(path: str | Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Load arrays from a processed .npz, with a clear error when the file is missing or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run the preprocess stage first (snakemake {path}).")
    try:
        with np.load(path) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DataError(f"{path} lacks arrays {missing}: delete it and rerun its preprocess stage.")
            return {k: data[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its preprocess stage.") from exc


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
        from stages.datasets.videos import ClipSampler, load_packed

        _, train_file, val_file = paths.processed_files(profile, dataset_cfg["name"])
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


def save_checkpoint(path: str | Path, payload: dict) -> None:
    from stages.errors import atomic_path

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(checkpoint_path: str | Path, device: torch.device):
    """Rebuild a trained model from checkpoint.pt (weights only; no pickled code is executed)."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run the train stage first (snakemake {path}).")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/corrupt files
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its train stage.") from exc
    model = build_model(ckpt["family"], ckpt["model_config"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
