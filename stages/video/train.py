"""Train a chapter 3.2 video model (SRVP or SVG): ``python -m stages.train --experiment srvp-smmnist``.

Adam with the SRVP schedule (constant, then linear decay to 0); the kept checkpoint is the one with the
best validation best-of-N PSNR (``select: best_val_psnr``) or the last one. Data-parallel under torchrun
(stages/distributed.py): each step's batch is cut into world x grad_accum shards, each with its own
generator, so any split computes the same update.
"""
from __future__ import annotations

import torch

from stages import distributed
from stages.checkpoints import build_model
from stages.registry import config_digest, dataset_config, experiment_config
from stages.runtime import autocast, select_device, step_generator
from stages.training import experiment_spec, run_training
from stages.video.data import VideoData, lr_at, to_float_video, validate_psnr


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam, fused (one pass over every parameter instead of about ten) where torch has it for the device:
    3x less optimiser time on CPU (benchmarks/srvp_step.py). Equal to the loop version up to float rounding."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except RuntimeError:  # e.g. a device without a fused implementation
        return torch.optim.Adam(model.parameters(), lr=lr)


def uses_channels_last(tr: dict, device: torch.device) -> bool:
    """``train.cpu_channels_last``: the convolutions run on channels-last tensors on CPU. A step is ~11% faster
    so at the paper SM-MNIST widths (DCGAN64, nf 64) but slower at smoke widths and for VGG64 (KTH), so it is
    on only where it measured faster (benchmarks/srvp_step.py). Same numbers up to float rounding."""
    return bool(tr.get("cpu_channels_last")) and device.type == "cpu"


def _shard_generator(seed: int, step: int, shard: int, n_shards: int, device: torch.device) -> torch.Generator:
    """One batch, one process: the generator of the single-shard code path (unchanged SM-MNIST results)."""
    if n_shards == 1:
        return step_generator(seed, step, device)
    return step_generator(seed + 104_729 * (shard + 1), step, device)


class VideoJob:
    def __init__(self, cfg: dict, ds_cfg: dict, profile: str, ctx, device):
        self.cfg, self.tr, self.ctx, self.device = cfg, cfg["train"], ctx, device
        self.grad_accum = int(self.tr.get("grad_accum", 1))
        torch.manual_seed(self.tr["seed"])  # parameter initialisation (identical on every rank)
        self.model = build_model(cfg["family"], cfg["model"]).to(device)
        if uses_channels_last(self.tr, device):
            self.model.to(memory_format=torch.channels_last)
        self.trainer = distributed.wrap(self.model, ctx, device)
        self.optim = make_optimizer(self.model, self.tr["lr"], device)
        self.data = VideoData(cfg, ds_cfg, profile)
        self.n_cond = cfg.get("protocol", {}).get("n_cond", 5)
        self.model.train()

    def step(self, step: int) -> dict:
        tr = self.tr
        lr = lr_at(step, tr["lr"], tr["lr_constant_steps"], tr["lr_decay_steps"])
        for group in self.optim.param_groups:
            group["lr"] = lr
        batch = self.data.train_batch(step, tr["batch_size"])
        self.optim.zero_grad(set_to_none=True)
        n_shards = self.ctx.world * self.grad_accum
        parts = []
        for shard, rows in distributed.my_shards(tr["batch_size"], self.ctx, self.grad_accum):
            x = to_float_video(batch[rows], self.device)
            with autocast(self.device):
                part = self.trainer(x, generator=_shard_generator(tr["seed"], step, shard, n_shards, self.device))
            (part["loss"] / self.grad_accum).backward()  # DDP then averages over ranks: the mean over shards
            parts.append({k: v.detach() for k, v in part.items()})
        self.optim.step()
        return {"lr": lr, **{k: float(sum(p[k] for p in parts) / len(parts)) for k in parts[0]}}

    def validate(self, step: int) -> dict:
        psnr = validate_psnr(self.model, self.data.val_batches, self.n_cond, self.tr["val_samples"],
                             self.tr["seed"] + step, self.device)
        return {"val_psnr": psnr, "score": psnr}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optim": self.optim.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state["optim"])

    def weights(self) -> dict:
        return self.model.state_dict()

    def reset(self, restarts: int) -> None:
        raise NotImplementedError("video training never restarts")

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        return {"family": self.cfg["family"], "model_config": self.cfg["model"], "state_dict": weights,
                "experiment": self.cfg["name"], "profile": self.cfg["profile"], **summary}


def train(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    ds_cfg = dataset_config(params, cfg["dataset"], profile)
    tr = cfg["train"]
    ctx, device = distributed.setup(select_device(args.device))
    try:
        job = VideoJob(cfg, ds_cfg, profile, ctx, device)
        # The digest ignores how the batch is split (world size, grad_accum) and the tensor layout: a run may
        # resume on other hardware.
        layout_only = ("grad_accum", "cpu_channels_last")
        digest = config_digest([cfg["family"], cfg["model"], {k: v for k, v in tr.items() if k not in layout_only},
                                ds_cfg])
        best = tr["select"] == "best_val_psnr"
        spec = experiment_spec(args, params, profile, digest=digest, total=tr["lr_constant_steps"] + tr["lr_decay_steps"],
                               log_interval=tr["log_interval"], checkpoint_interval=tr["checkpoint_interval"],
                               val_interval=tr["val_interval"] if best else None, select="best" if best else "last",
                               is_main=ctx.is_main)
        return run_training(job, spec, device)
    finally:
        distributed.teardown(ctx)
