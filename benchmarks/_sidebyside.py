"""Our training step and the authors' one, timed side by side, each in its own worker process.

Separate processes because the C allocator's settings are per process (ours keeps freed memory, theirs is
glibc's default) and because two models in one process share caches and memory. The driver asks each worker
for one step in turn, ``repeat`` times, so a machine that slows down or speeds up (a shared 2-core VM varies by
±20% from minute to minute) slows every side alike; the result is each side's median and best step.

Worker protocol: the worker builds its step, runs ``warmup`` steps, prints ``{"ready": true}``; then for
each ``step`` line on stdin it runs one step and prints ``{"wall": s, "cpu": s}``. Anything else it prints
goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def serve(step: Callable[[], None], warmup: int) -> None:
    """The worker side: answer each ``step`` request on stdin with one timed step on stdout."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr          # library prints must not break the protocol
    for _ in range(warmup):
        step()
    print(json.dumps({"ready": True}), file=out, flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - start_cpu}),
              file=out, flush=True)


def _read(proc: subprocess.Popen, name: str) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"error: the {name} worker exited (status {proc.wait()}); its stderr is above")
    return json.loads(line)


def side_by_side(script: Path, workers: dict[str, list[str]], repeat: int) -> dict[str, dict]:
    """Run ``script --worker ...`` once per entry of ``workers`` (name -> arguments) and time them in turn."""
    procs = {name: subprocess.Popen([sys.executable, str(script), *argv], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
             for name, argv in workers.items()}
    try:
        for name, proc in procs.items():
            _read(proc, name)                     # ready (built and warmed up)
        times: dict[str, list[dict]] = {name: [] for name in procs}
        for _ in range(repeat):
            for name, proc in procs.items():
                proc.stdin.write("step\n")
                proc.stdin.flush()
                times[name].append(_read(proc, name))
    finally:
        for proc in procs.values():
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
            proc.wait()
    return {name: summary(rows) for name, rows in times.items()}


def summary(rows: list[dict]) -> dict:
    walls, cpus = sorted(r["wall"] for r in rows), sorted(r["cpu"] for r in rows)
    return {"median_s_per_it": round(walls[len(walls) // 2], 3), "best_s_per_it": round(walls[0], 3),
            "median_cpu_s_per_it": round(cpus[len(cpus) // 2], 3), "steps": len(rows)}


def ratios(results: dict[str, dict], ours: str = "ours") -> dict[str, float]:
    """Each other side's median step over ours: the speed-up of ours against it."""
    return {name: round(r["median_s_per_it"] / results[ours]["median_s_per_it"], 3)
            for name, r in results.items() if name != ours}


def add_arguments(parser: argparse.ArgumentParser, repository: str) -> None:
    """The options both comparisons share: allocator, the authors' clone, and the hidden worker mode."""
    parser.add_argument("--allocator", choices=["retain", "system"], default="retain",
                        help="our stages' setting (retain, stages/allocator.py) or glibc's default (system)")
    parser.add_argument("--authors", type=Path, help=f"a clone of {repository}: time the authors' step too")
    parser.add_argument("--authors-allocator", nargs="+", choices=["system", "retain"], default=["system"],
                        help="allocator(s) to run their step with (default: glibc's, as their script runs)")
    parser.add_argument("--worker", choices=["ours", "authors"], help=argparse.SUPPRESS)


def workers(args: argparse.Namespace, common: list[str]) -> dict[str, list[str]]:
    """Worker command lines: ours with the stages' allocator, theirs with each of ``--authors-allocator``."""
    out = {"ours": ["--worker", "ours", "--allocator", "retain", *common]}
    for alloc in args.authors_allocator:
        name = "authors" if alloc == "system" else f"authors_allocator_{alloc}"
        out[name] = ["--worker", "authors", "--authors", str(args.authors), "--allocator", alloc, *common]
    return out
