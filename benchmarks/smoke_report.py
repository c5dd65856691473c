"""Wall time of the whole smoke report (`snakemake --cores all reports/thesis_tables.pdf`) from a cold
copy of the project, with the existing venv (JSON on stdout).

    python benchmarks/smoke_report.py [--profile smoke] [--repo PATH]

``--repo`` measures another checkout (e.g. a worktree of an older commit) with this venv, so two versions
can be timed side by side on the same machine.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit

ITEMS = ["params.yaml", "Snakefile", "workflow", "profiles", "stages", "models", "reference"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--repo", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for item in ITEMS:
            src = args.repo / item
            if src.exists():
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / item)
        exe = Path(sys.executable).parent / "snakemake"
        start = time.perf_counter()
        proc = subprocess.run([str(exe), "--cores", "all", "reports/thesis_tables.pdf", "--config",
                               f"profile={args.profile}"], cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        per_rule, cpu = {}, 0.0  # Snakemake's own per-rule benchmark files (columns s, ..., cpu_time last)
        for tsv in sorted((work / "logs" / args.profile).glob("*.benchmark.tsv")):
            header, values = (line.split("\t") for line in tsv.read_text().splitlines()[:2])
            per_rule[tsv.name.removesuffix(".benchmark.tsv")] = float(values[0])
            cpu += float(values[header.index("cpu_time")])
        emit("smoke_report", {"repo": str(args.repo), "profile": args.profile, "returncode": proc.returncode,
                              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "jobs": len(per_rule),
                              "rule_seconds": per_rule,
                              "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""})


if __name__ == "__main__":
    main()
