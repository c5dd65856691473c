"""Data-parallel training under ``torchrun`` (DDP), and the same arithmetic in one process.

    torchrun --standalone --nproc_per_node 4 -m stages.train --experiment srvp-kth --profile paper
    WEAKGEN_NPROC=4 python -m stages.train ...        # the same: train.py re-launches itself under torchrun

Each step's global batch is a pure function of (seed, step) and is cut into ``world * grad_accum`` equal
shards; rank r processes shards r*grad_accum ... (r+1)*grad_accum-1, each with its own generator, and DDP
averages the gradients. A single process with ``grad_accum = world`` computes exactly the same update
(tests/test_distributed.py checks this with 2 gloo processes on CPU). BatchNorm statistics are per shard
(as the SRVP code on several GPUs); on CUDA with several ranks they are synchronised (SyncBatchNorm), which
is not available with gloo on CPU. Rank 0 alone validates, logs and writes checkpoints.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from stages.errors import ConfigError

NPROC_ENV = "WEAKGEN_NPROC"


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def requested_processes() -> int:
    """Processes asked for by WEAKGEN_NPROC (1 when unset); ConfigError when it is not a positive integer."""
    value = os.environ.get(NPROC_ENV, "1") or "1"
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{NPROC_ENV}={value!r} is not a positive integer: set it to the number of processes "
                          f"(GPUs) to train on, or unset it.")
    return int(value)


def relaunch_under_torchrun(argv: list[str] | None) -> int | None:
    """When WEAKGEN_NPROC > 1 and we are not already a torchrun worker, run ``torchrun -m stages.train`` instead."""
    nproc = requested_processes()
    if nproc <= 1 or "WORLD_SIZE" in os.environ:
        return None
    args = sys.argv[1:] if argv is None else list(argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "stages.train", *args]
    return subprocess.call(cmd)


def setup(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group torchrun prepared (NCCL on CUDA, gloo on CPU); one process: a no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank=rank, world=world, local_rank=local), device


def teardown(ctx: Context) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


class LossModule(nn.Module):
    """Calls ``model.training_losses`` through ``forward``, so that DDP's gradient hooks see the call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return self.model.training_losses(x, generator=generator)


def wrap(model: nn.Module, ctx: Context, device: torch.device) -> nn.Module:
    """The module to call for training losses: DDP around LossModule when several ranks run."""
    loss = LossModule(model)
    if not ctx.enabled:
        return loss
    if device.type == "cuda":
        loss = nn.SyncBatchNorm.convert_sync_batchnorm(loss)
        return nn.parallel.DistributedDataParallel(loss, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(loss)


def my_shards(batch_size: int, ctx: Context, grad_accum: int) -> list[tuple[int, slice]]:
    """(global shard index, rows of the global batch) of this rank's shards."""
    n = ctx.world * grad_accum
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} must be divisible by world size x grad_accum = {n}")
    size = batch_size // n
    first = ctx.rank * grad_accum
    return [(g, slice(g * size, (g + 1) * size)) for g in range(first, first + grad_accum)]


def broadcast_flag(flag: bool, ctx: Context) -> bool:
    """Rank 0's decision, shared (e.g. whether to stop)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([int(flag)])
    dist.broadcast(t, 0)
    return bool(t.item())
