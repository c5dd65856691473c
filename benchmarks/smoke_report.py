"""Wall time of the whole smoke report (`snakemake --cores all reports/thesis_tables.pdf`) from a cold
copy of the project, with the existing venv (JSON on stdout): per rule its wall seconds, per chapter the
sum of its rules' wall seconds and CPU seconds (Snakemake's benchmark files; dataset stages shared by
chapters and the report count as "shared"), and the CPU seconds of the whole run, Snakemake's own included.

    python benchmarks/smoke_report.py [--profile smoke] [--repo PATH]

``--repo`` measures another checkout (e.g. a worktree of an older commit) with this venv, so two versions
can be timed side by side on the same machine.
"""
from __future__ import annotations

import argparse
import json
import resource
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
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([str(exe), "--cores", "all", "reports/thesis_tables.pdf", "--config",
                               f"profile={args.profile}"], cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # All CPU of the run: every job plus Snakemake's own scheduling and bookkeeping.
        total_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        chapter_of = _chapters(work, args.profile)
        per_rule, per_chapter, cpu = {}, {}, 0.0  # Snakemake's per-rule benchmark files (s, ..., cpu_time)
        for tsv in sorted((work / "logs" / args.profile).glob("*.benchmark.tsv")):
            header, values = (line.split("\t") for line in tsv.read_text().splitlines()[:2])
            rule = tsv.name.removesuffix(".benchmark.tsv")
            rule_cpu = float(values[header.index("cpu_time")])
            per_rule[rule] = float(values[0])
            chapter = per_chapter.setdefault(chapter_of.get(rule) or "shared", {"job_s": 0.0, "cpu_s": 0.0, "jobs": 0})
            chapter["job_s"] += float(values[0])
            chapter["cpu_s"] += rule_cpu
            chapter["jobs"] += 1
            cpu += rule_cpu
        emit("smoke_report", {"repo": str(args.repo), "profile": args.profile, "returncode": proc.returncode,
                              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                              "cpu_s_with_snakemake": round(total_cpu, 1), "jobs": len(per_rule),
                              "per_chapter": {k: {m: round(v, 1) for m, v in c.items()}
                                              for k, c in sorted(per_chapter.items())},
                              "rule_seconds": per_rule,
                              "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""})


def _chapters(work: Path, profile: str) -> dict[str, str]:
    """Rule name -> title of its thesis chapter, from the measured checkout's own graph."""
    code = ("import json, sys; sys.path.insert(0, '.'); from stages.graph import build_graph; "
            "from stages.registry import load_params; "
            f"print(json.dumps({{st.name: st.chapter for st in build_graph(load_params('params.yaml'), {profile!r})}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


if __name__ == "__main__":
    main()
