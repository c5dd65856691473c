"""Helpers for benchmark scripts: timing with warm-up, JSON output with the machine's description."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def timed(fn, *, warmup: int = 1, repeat: int = 3) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def video_train_step(model, optim, x, device):
    """A function running one training step of a chapter-3.2 video model on the fixed batch ``x``, as the
    train stage does (autocast, per-step generator), synchronised on CUDA so timings are real."""
    import torch

    from stages.runtime import autocast, step_generator

    counter = [0]

    def step():
        with autocast(device):
            loss = model.training_losses(x, generator=step_generator(0, counter[0], device))["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
        counter[0] += 1
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def emit(name: str, results) -> None:
    print(json.dumps({"benchmark": name, "machine": machine(), "results": results}, indent=2))
