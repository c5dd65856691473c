"""Stage processes keep freed memory for reuse (stages/allocator.py): a freed 256 MB block stays with the process
and the next one faults no page in. Each case runs in its own process, as a stage does, so pytest's allocator
is left alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = r"""
import json, resource, sys, numpy as np
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "cli":
    import argparse
    from stages.cli import load_registry
    load_registry(argparse.Namespace(params=sys.argv[1] + "/params.yaml", profile="ci"))
elif sys.argv[2] == "direct":
    from stages.allocator import retain_freed_memory
    print(json.dumps({"applied": retain_freed_memory()}))
rss_mb = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
block = np.ones(256 * 2**20 // 8)       # 256 MB, touched
held = rss_mb()
del block
returned = held - rss_mb()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
again = np.ones(256 * 2**20 // 8)
print(json.dumps({"returned_mb": returned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")


def probe(mode: str, **env) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, cwd=ROOT)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_freed_memory_is_reused_without_page_faults():
    applied, second = probe("direct")
    assert applied == {"applied": True}
    assert second["returned_mb"] < 8 and second["faults"] < 16   # kept, then reused without page faults


def test_glibc_defaults_return_the_block_to_the_kernel():
    # The control: without the settings the freed block goes back to the kernel (and faults in again).
    second = probe("none")[0]
    assert second["returned_mb"] > 200 and second["faults"] > 16


def test_stage_cli_applies_it_and_the_opt_out_is_respected():
    assert probe("cli")[0]["returned_mb"] < 8
    applied, second = probe("direct", WEAKGEN_MALLOC="system")
    assert applied == {"applied": False} and second["returned_mb"] > 200
