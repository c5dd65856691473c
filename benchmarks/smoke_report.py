"""Wall time of the whole smoke report (`snakemake --cores all reports/thesis_tables.pdf`) from a cold
copy of the project, with the existing venv (JSON on stdout): per rule its wall seconds, per chapter the
sum of its rules' wall seconds and CPU seconds (each stage's own record, logs/<profile>/<rule>.usage.json,
written by stages/usage.py; dataset stages shared by chapters and the report count as "shared"), the CPU
seconds of the whole run, and how many of them Snakemake's own process spent (scheduling, bookkeeping).

    python benchmarks/smoke_report.py [--profile smoke] [--repo PATH]

``--repo`` measures another checkout (e.g. a worktree of an older commit) with this venv, so two versions
can be timed side by side on the same machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit

from stages.usage import proc_stat_fields  # noqa: E402

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
        log = work / "snakemake.stderr"  # a file, not a pipe: a full pipe would stall Snakemake
        with log.open("w") as err:
            proc = subprocess.Popen([str(exe), "--cores", "all", "reports/thesis_tables.pdf", "--config",
                                     f"profile={args.profile}"], cwd=work, stdout=subprocess.DEVNULL, stderr=err)
            snakemake_cpu = _own_cpu_until_exit(proc)
        stderr = log.read_text()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # All CPU of the run: every job plus Snakemake's own scheduling and bookkeeping.
        total_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        chapter_of = _chapters(work, args.profile)
        per_rule, per_chapter, cpu = {}, {}, 0.0
        for record in sorted((work / "logs" / args.profile).glob("*.usage.json")):
            usage = json.loads(record.read_text())
            rule = record.name.removesuffix(".usage.json")
            per_rule[rule] = usage["wall_s"]
            chapter = per_chapter.setdefault(chapter_of.get(rule) or "shared", {"job_s": 0.0, "cpu_s": 0.0, "jobs": 0})
            chapter["job_s"] += usage["wall_s"]
            chapter["cpu_s"] += usage["cpu_s"]
            chapter["jobs"] += 1
            cpu += usage["cpu_s"]
        emit("smoke_report", {"repo": str(args.repo), "profile": args.profile, "returncode": proc.returncode,
                              "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                              "cpu_s_with_snakemake": round(total_cpu, 1),
                              "snakemake_own_cpu_s": snakemake_cpu, "jobs": len(per_rule),
                              "per_chapter": {k: {m: round(v, 1) for m, v in c.items()}
                                              for k, c in sorted(per_chapter.items())},
                              "rule_seconds": per_rule,
                              "stderr_tail": stderr[-2000:] if proc.returncode else ""})


def _own_cpu_until_exit(proc: subprocess.Popen) -> float | None:
    """CPU seconds of the process itself (all its threads, not its children), read from /proc while it
    runs: the last reading before it exits (Linux only; None elsewhere)."""
    tick, last = os.sysconf("SC_CLK_TCK"), None
    while proc.poll() is None:
        try:
            fields = proc_stat_fields(proc.pid)
            last = round((int(fields[11]) + int(fields[12])) / tick, 1)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.5)
    return last


def _chapters(work: Path, profile: str) -> dict[str, str]:
    """Rule name -> title of its thesis chapter, from the measured checkout's own graph."""
    code = ("import json, sys; sys.path.insert(0, '.'); from stages.graph import build_graph; "
            "from stages.registry import load_params; "
            f"print(json.dumps({{st.name: st.chapter for st in build_graph(load_params('params.yaml'), {profile!r})}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


if __name__ == "__main__":
    main()
