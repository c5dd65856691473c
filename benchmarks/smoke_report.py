"""Wall time of the whole smoke report (`snakemake --cores all reports/thesis_tables.pdf`) from a cold
copy of the project, with the existing venv (JSON on stdout).

    python benchmarks/smoke_report.py [--profile smoke]
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

ITEMS = ["params.yaml", "workflow", "profiles", "stages", "models", "reference"]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profile", default="smoke")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for item in ITEMS:
            src = ROOT / item
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / item)
        exe = Path(sys.executable).parent / "snakemake"
        start = time.perf_counter()
        proc = subprocess.run([str(exe), "--cores", "all", "reports/thesis_tables.pdf", "--config",
                               f"profile={args.profile}"], cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        per_rule = {}  # Snakemake's own per-rule benchmark files (first column: seconds)
        for tsv in sorted((work / "logs" / args.profile).glob("*.benchmark.tsv")):
            per_rule[tsv.name.removesuffix(".benchmark.tsv")] = float(tsv.read_text().splitlines()[1].split("\t")[0])
        emit("smoke_report", {"profile": args.profile, "returncode": proc.returncode,
                              "wall_s": round(wall, 1), "rule_seconds": per_rule,
                              "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""})


if __name__ == "__main__":
    main()
