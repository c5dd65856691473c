"""A stage's usage record (stages/usage.py): exact CPU seconds of the stage and of the children it waited for,
wall seconds since the process started, peak memory; written only on success and only when asked."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# A stage whose main burns ~0.4 CPU-s itself, then waits for a child that burns ~0.4 CPU-s more, then sleeps
# 0.3 s; it fails with a WeakgenError when asked to.
STAGE = """
import subprocess, sys, time
from stages.errors import ConfigError, run_cli

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def main(argv):
    if "--fail" in sys.argv:
        raise ConfigError("asked to fail")
    burn(0.4)
    peak = bytearray(200 << 20)
    peak[::4096] = bytes(len(peak) // 4096)  # touch every page: ~200 MB resident
    del peak
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"], check=True)
    time.sleep(0.3)
    return 0

run_cli(main)
"""


# Spawns its command line from a process with ~600 MB resident (as Snakemake or a pytest worker would be).
BIG_PARENT = ("import subprocess, sys\nb = bytearray(600 << 20)\nb[::4096] = bytes(len(b) // 4096)\n"
              "sys.exit(subprocess.run(sys.argv[1:]).returncode)")


def _run_stage(tmp_path, *args, via_big_parent=False, **env):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    full_env = {k: v for k, v in os.environ.items() if k not in ("WEAKGEN_USAGE_FILE", "LOCAL_RANK")}
    full_env.update(PYTHONPATH=str(ROOT), **env)
    cmd = [sys.executable, str(script), *args]
    if via_big_parent:
        cmd = [sys.executable, "-c", BIG_PARENT, *cmd]
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True)


def test_usage_counts_the_stage_and_its_children(tmp_path):
    target = tmp_path / "logs" / "x.usage.json"
    proc = _run_stage(tmp_path, WEAKGEN_USAGE_FILE=str(target), via_big_parent=True)
    assert proc.returncode == 0, proc.stderr
    usage = json.loads(target.read_text())
    # 0.4 s own + 0.4 s child + interpreter start-ups; a sampler that missed the child would see ~0.45.
    assert 0.8 <= usage["cpu_s"] < 3.0
    assert usage["wall_s"] >= usage["cpu_s"] + 0.25  # the 0.3 s sleep is wall time, not CPU time
    assert usage["wall_s"] < usage["cpu_s"] + 3.0
    # The stage's own peak: its 200 MB buffer, not the 600 MB of the process that spawned it.
    assert 200 < usage["max_rss_mb"] < 450
    assert usage["argv"][0].endswith("stage.py")


def test_no_record_on_failure_without_the_variable_or_in_a_torchrun_worker(tmp_path):
    target = tmp_path / "x.usage.json"
    failed = _run_stage(tmp_path, "--fail", WEAKGEN_USAGE_FILE=str(target))
    assert failed.returncode == 2 and "asked to fail" in failed.stderr
    assert not target.exists()
    assert _run_stage(tmp_path, WEAKGEN_USAGE_FILE=str(target), LOCAL_RANK="1").returncode == 0
    assert not target.exists()  # the launching process accounts for torchrun's workers
    assert _run_stage(tmp_path).returncode == 0
    assert not list(tmp_path.rglob("*.usage.json"))


# A stage whose success leaves work for the exit: buffered stdout (piped, so block-buffered), an atexit
# handler, and, when asked, a non-daemon thread that is still writing.
EXITING_STAGE = """
import atexit, sys, threading, time
from pathlib import Path
from stages.errors import run_cli

def main(argv):
    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    if "--thread" in sys.argv:
        threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
    print("x" * 100)  # stays in the buffer until the exit flushes it
    return 3 if "--code" in sys.argv else 0

run_cli(main)
"""


def test_a_stage_exits_without_teardown_but_with_every_outside_effect(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(EXITING_STAGE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for extra, code in (([], 0), (["--code"], 3), (["--thread"], 0)):
        out = tmp_path / f"out{len(extra)}{code}"
        out.mkdir()
        proc = subprocess.run([sys.executable, str(script), str(out), *extra], env=env, capture_output=True, text=True)
        assert proc.returncode == code
        assert proc.stdout == "x" * 100 + "\n"
        assert (out / "atexit").read_text() == "ran"
        if extra == ["--thread"]:
            assert (out / "thread").read_text() == "done"  # a live non-daemon thread is waited for
