"""What a stage cost: wall seconds, CPU seconds and peak memory, written when it succeeds.

Snakemake sets ``WEAKGEN_USAGE_FILE`` (logs/<profile>/<rule>.usage.json) for every job; a stage run by hand
or by DVC writes nothing. The numbers are the process's own accounting (``getrusage`` of the stage and of
the children it waited for, e.g. ffmpeg or torchrun's workers), so they are exact, unlike Snakemake's
``benchmark:`` directive, which samples the job's process tree every 0.5 s (then every 30 s) and misses
the CPU spent after its last sample. Its sampling also cost the scheduler ~100 CPU-seconds over the
smoke report (it reads every job process's memory map each time), which is why the Snakefile dropped it.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

USAGE_ENV = "WEAKGEN_USAGE_FILE"


def proc_stat_fields(pid: int | str = "self") -> list[str]:
    """Fields of Linux's /proc/<pid>/stat after the command name (so field 3, the state, is index 0);
    OSError where there is no /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def process_wall_seconds() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included)."""
    try:  # Linux: start time and uptime both count from boot, in clock ticks / seconds (10 ms resolution)
        start_ticks = int(proc_stat_fields()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    try:  # elsewhere psutil (a Snakemake dependency), whose start time is only as exact as the boot time
        import psutil
    except ImportError:
        return None
    return time.time() - psutil.Process().create_time()


def own_peak_rss_kib(fallback: int) -> int:
    """Peak resident memory of this process image, KiB. Linux's ru_maxrss also counts the image it replaced
    (a process spawned by a 2 GB parent reports at least 2 GB), so /proc's VmHWM is read where it exists."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return fallback


def current_usage() -> dict:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is in KiB on Linux and in bytes on macOS; a waited child's peak is reported separately (it
    # may include this process's size when it was spawned, which this process's own peak already covers).
    per_kib = 1024 if sys.platform == "darwin" else 1
    own_kib = own_peak_rss_kib(own.ru_maxrss // per_kib)
    wall = process_wall_seconds()
    return {"wall_s": None if wall is None else round(wall, 3),
            "cpu_s": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3),
            "max_rss_mb": round(max(own_kib, children.ru_maxrss // per_kib) / 1024, 1)}


def record_usage() -> None:
    """Write this process's usage to $WEAKGEN_USAGE_FILE, if set (not from torchrun's workers: the process
    that launched them accounts for them)."""
    target = os.environ.get(USAGE_ENV)
    if not target or "LOCAL_RANK" in os.environ:
        return
    from stages.errors import write_json_atomic

    usage = current_usage()
    usage["argv"] = sys.argv
    write_json_atomic(Path(target), usage)
