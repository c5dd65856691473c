"""Seconds per SRVP training step at the released SM-MNIST configuration, beside the authors' code (JSON).

    OMP_NUM_THREADS=2 python benchmarks/srvp_step.py [--threads 2] [--repeat 5] [--variants ...]

One step = forward, negative ELBO, backward and Adam update on a batch of 16 clips x 15 frames, float32, CPU.
The issue's reference: the authors' step takes 2.96 s on the 2-core reference machine (2 threads); the target
is <= 2.37 s (1.25x faster). Variants are timed interleaved (one step of each in turn, best of ``--repeat``),
so a busy machine slows them alike; the JSON carries the load average (``uptime``) measured around the run
and each variant's CPU seconds per step (process time, all threads: less sensitive to other jobs than wall
time, and about ``threads`` x s_per_it on an idle machine).
Variants: ``baseline`` (the loop Adam of torch's CPU default, contiguous tensors), ``foreach`` and ``fused``
Adam, ``channels_last`` (conv weights in NHWC) and ``train_stage`` (the optimiser stages/video/train.py builds).
"""
from __future__ import annotations

import argparse
import os
import time

from _common import ROOT, emit

import torch  # noqa: E402

from stages.checkpoints import build_model  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402
from stages.runtime import step_generator  # noqa: E402

AUTHORS_S_PER_IT = 2.96     # issue 13: their step, same machine, same configuration
TARGET_SPEEDUP = 1.25


def make_step(variant: str, cfg: dict, x: torch.Tensor):
    torch.manual_seed(0)
    model = build_model("srvp", cfg["model"]).train()
    if variant == "train_stage":
        from stages.video.train import make_optimizer

        opt = make_optimizer(model, 3e-4, torch.device("cpu"))
    else:
        if variant == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        kwargs = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(variant, {"foreach": False})
        opt = torch.optim.Adam(model.parameters(), lr=3e-4, **kwargs)
    counter = [0]

    def step():
        loss = model.training_losses(x, generator=step_generator(0, counter[0], x.device))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counter[0] += 1

    return step


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5, help="timed steps per variant (best kept)")
    p.add_argument("--variants", nargs="+", default=["baseline", "foreach", "fused", "channels_last", "train_stage"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = experiment_config(load_params(ROOT / "params.yaml"), "srvp-smmnist", "paper")
    x = torch.rand(16, 15, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    steps = {v: make_step(v, cfg, x) for v in args.variants}
    for step in steps.values():   # warm-up: allocator, oneDNN primitive caches
        step()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {v: [] for v in steps}
    cpu: dict[str, list[float]] = {v: [] for v in steps}
    for _ in range(args.repeat):
        for v, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            times[v].append(time.perf_counter() - start)
            cpu[v].append(time.process_time() - start_cpu)
    load_after = os.getloadavg()
    results = []
    for v, ts in times.items():
        best = min(ts)
        results.append({"variant": v, "s_per_it": round(best, 3), "median_s_per_it": round(sorted(ts)[len(ts) // 2], 3),
                        "cpu_s_per_it": round(min(cpu[v]), 3), "speedup_vs_authors": round(AUTHORS_S_PER_IT / best, 2)})
    emit("srvp_step", {"config": "srvp-smmnist (paper = released), batch 16 x 15 frames, float32, CPU",
                       "threads": args.threads, "authors_s_per_it": AUTHORS_S_PER_IT,
                       "target_s_per_it": round(AUTHORS_S_PER_IT / TARGET_SPEEDUP, 2),
                       "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                       "variants": results})


if __name__ == "__main__":
    main()
