"""Devices, mixed precision and per-step random generators, shared by every trainer and sampler."""
from __future__ import annotations

import contextlib

import torch

from stages.errors import DataError


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
