"""Chapter 4.1 throughput (JSON on stdout): Parzen, G2T / T2G, training it/s per kind, generated windows/s.

    python benchmarks/motion_throughput.py [--parzen 2000] [--nearest 4000] [--scale smoke|paper] [--threads 1]

- ``parzen``: one Parzen log-likelihood run of N generated against N test windows of 200 x 69 values
  (stages/metrics/parzen.py; the generated ones streamed in batches, as the evaluation does), the peak
  resident memory of the process and its growth, and the time extrapolated to the paper's 10,000 x
  10,000 (the cost is quadratic; target <= 60 s on 1 thread, <= 1.5 GB). ``--parzen 10000`` measures it.
- ``nearest``: G2T + T2G in one blocked pass over N x N windows (stages/metrics/nearest.py), extrapolated to
  60,000 x 60,000 (target <= 35 min on 1 thread, <= 1 min on a GPU).
- ``train``: optimisation steps per second of each model kind at the smoke or paper sizes (params.yaml);
  ``generate``: windows generated per second.
The load average is printed with the numbers: on a shared machine they are only as good as it is quiet.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

from _common import emit

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.motion import KINDS, MotionModel  # noqa: E402
from stages.metrics.nearest import g2t_t2g  # noqa: E402
from stages.metrics.parzen import parzen_log_likelihood  # noqa: E402

WINDOW, DIM = 200, 69
SIZES = {"smoke": dict(hidden=32, layers=1, code=8, window=32, batch=16),
         "paper": dict(hidden=512, layers=2, code=64, window=200, batch=64)}


def _windows(n: int, seed: int, window: int = WINDOW) -> torch.Tensor:
    return torch.rand(n, window, DIM, generator=torch.Generator().manual_seed(seed))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _streamed_windows(n: int, seed: int, batch: int = 256):
    """Generated windows as the evaluation passes them: batch by batch, never all in memory."""
    g = torch.Generator().manual_seed(seed)
    for a in range(0, n, batch):
        yield torch.rand(min(batch, n - a), WINDOW, DIM, generator=g)


def bench_parzen(n: int, device) -> dict:
    x = _windows(n, 0)
    before = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    parzen_log_likelihood(x, _streamed_windows(n, 1), [0.2], device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"n": n, "values": WINDOW * DIM, "seconds": took, "cpu_seconds": cpu,
            "peak_rss_mb": _peak_mb(), "peak_rss_growth_mb": _peak_mb() - before, "target_peak_mb": 1536,
            "test_windows_mb": x.numel() * 4 / 2**20, "paper_10k_seconds_extrapolated": took * (10_000 / n) ** 2,
            "paper_10k_cpu_seconds_extrapolated": cpu * (10_000 / n) ** 2, "target_seconds": 60}


def bench_nearest(n: int, device) -> dict:
    g, r = _windows(n, 2), _windows(n, 3)
    start, cpu = time.perf_counter(), time.process_time()
    g2t_t2g(g, r, frames=WINDOW, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"n": n, "seconds": took, "cpu_seconds": cpu, "paper_60k_seconds_extrapolated": took * (60_000 / n) ** 2,
            "paper_60k_cpu_seconds_extrapolated": cpu * (60_000 / n) ** 2,
            "target_seconds_cpu": 35 * 60, "target_seconds_gpu": 60}


def bench_models(scale: str, steps: int) -> dict:
    s = SIZES[scale]
    out = {}
    x = _windows(s["batch"], 4, s["window"])
    emotion = torch.arange(s["batch"]) % 8
    for kind in KINDS:
        torch.manual_seed(0)
        m = MotionModel(kind, frame_dim=DIM, window=s["window"], hidden=s["hidden"], layers=s["layers"], code=s["code"],
                        style=8 if kind == "dasae" else 0, n_emotions=8)
        ae = torch.optim.Adam(m.autoencoder_parameters(), lr=1e-3)
        d = torch.optim.Adam(m.discriminator_parameters(), lr=1e-3) if m.discriminator_parameters() else None
        m.train_step(x, emotion, ae, d, 0)
        start = time.perf_counter()
        for step in range(steps):
            m.train_step(x, emotion, ae, d, step)
        rec = {"train_it_per_s": steps / (time.perf_counter() - start)}
        if kind != "classifier":
            m.eval()
            with torch.no_grad():
                start = time.perf_counter()
                cond = m.condition(emotion, m.style_of(x) if kind == "dasae" else None)
                m.decode(m.sample_codes(s["batch"]), cond)
                rec["generated_windows_per_s"] = s["batch"] / (time.perf_counter() - start)
        out[kind] = rec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parzen", type=int, default=2000, help="generated = test windows of the Parzen run")
    ap.add_argument("--nearest", type=int, default=4000, help="generated = real windows of the G2T / T2G pass")
    ap.add_argument("--scale", choices=sorted(SIZES), default="smoke", help="model sizes of the training benchmark")
    ap.add_argument("--steps", type=int, default=10, help="training steps timed per kind")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-models", action="store_true", help="metrics only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    emit("motion_throughput", {"load_average": os.getloadavg(), "threads": args.threads,
                               "parzen": bench_parzen(args.parzen, device),
                               "nearest": bench_nearest(args.nearest, device),
                               "models": None if args.skip_models else
                               {"scale": args.scale, **bench_models(args.scale, args.steps)}})


if __name__ == "__main__":
    main()
