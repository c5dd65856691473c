"""Start-up cost of the stages of a profile's graph, and of a Snakemake dry run (JSON on stdout).

Every stage command of the graph (``python -m stages.<step> ...``) is run once in a scratch copy of the
code that holds no data (removed again after each stage): each stage imports what it needs, reads
params.yaml and stops at its first missing input, so its wall time is its start-up cost (preprocess
stages of embedded or synthetic data run in full: the same work in every version). ``-X importtime`` tells whether it imported torch.
The same script measures any checkout (``--repo``), so two versions compare side by side.

    python benchmarks/stage_startup.py [--repo PATH] [--profile smoke] [--dry-run-in WORKSPACE]

``--dry-run-in`` times ``snakemake -n reports/thesis_tables.pdf`` (3 runs) in a workspace where the report
is already built, i.e. the cost of asking "is anything out of date?".
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ["params.yaml", "Snakefile", "workflow", "stages", "models", "reference"]


def scratch_copy(repo: Path, dest: Path) -> Path:
    for item in CODE:
        src = repo / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / item)
    return dest


def stage_commands(workdir: Path, profile: str) -> list[list[str]]:
    out = subprocess.run([sys.executable, "-m", "stages.export_dvc", "--profile", profile, "--out", "-"],
                         cwd=workdir, capture_output=True, text=True, check=True).stdout
    import yaml

    stages = yaml.safe_load(out)["stages"]
    return [shlex.split(st["cmd"]) for st in stages.values()]


def time_stage(cmd: list[str], workdir: Path) -> tuple[float, bool]:
    cmd = [sys.executable, "-X", "importtime", *cmd[1:]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    for produced in ("data", "results", "reports", "logs"):  # the next stage must find no input either
        shutil.rmtree(workdir / produced, ignore_errors=True)
    return seconds, any(re.search(r"\|\s+torch$", line.rstrip()) for line in proc.stderr.splitlines())


def dry_run_seconds(workspace: Path, profile: str, runs: int = 3) -> list[float]:
    exe = str(Path(sys.executable).parent / "snakemake")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([exe, "-n", "reports/thesis_tables.pdf", "--config", f"profile={profile}"], cwd=workspace,
                       capture_output=True, check=True)
        times.append(round(time.perf_counter() - start, 3))
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--dry-run-in", type=Path, metavar="WORKSPACE", help="also time snakemake -n there")
    args = ap.parse_args(argv)
    per_step: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="weakgen-startup-") as tmp:
        workdir = scratch_copy(args.repo.resolve(), Path(tmp))
        for cmd in stage_commands(workdir, args.profile):
            per_step[cmd[2]].append(time_stage(cmd, workdir))
    steps = {step: {"stages": len(runs), "seconds_total": round(sum(s for s, _ in runs), 2),
                    "seconds_median": round(statistics.median(s for s, _ in runs), 3),
                    "torch_imported": sum(t for _, t in runs)} for step, runs in sorted(per_step.items())}
    result = {"repo": str(args.repo.resolve()), "profile": args.profile, "steps": steps,
              "seconds_total": round(sum(v["seconds_total"] for v in steps.values()), 2),
              "stages_importing_torch": sum(v["torch_imported"] for v in steps.values()),
              "stages": sum(v["stages"] for v in steps.values())}
    if args.dry_run_in:
        result["snakemake_dry_run_s"] = dry_run_seconds(args.dry_run_in, args.profile)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
