"""Stage processes keep the memory they free, so a training step reuses its buffers instead of faulting them in.

glibc serves every allocation above its mmap threshold (128 kB at start, raised with use to at most 32 MB):
activations, gradients, attention maps, with a fresh ``mmap``, and hands it back with ``munmap`` when freed.
Each step of a CPU training then page-faults all of its large tensors in again, and the kernel zeroes every
page: for the chapter 5 segmentation model at its released Flowers configuration that is ~1.2 million minor
faults and ~4 of ~26 CPU-seconds per iteration. Two ``mallopt`` settings make the heap behave like a caching
allocator (what PyTorch does on GPU): large blocks come from the heap (``M_MMAP_MAX`` 0) and freed memory stays
with the process (``M_TRIM_THRESHOLD`` unlimited), to be reused by the next step. The cost is peak memory held
until the process exits (that model: 5.4 against 4.4 GB), which a stage process can afford. Measured by the
chapter benchmarks' ``--allocator`` option (README, "Training speed on CPU").

Set ``WEAKGEN_MALLOC=system`` to keep glibc's defaults. Other C libraries (macOS, musl) are left alone.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1   # glibc malloc.h
M_MMAP_MAX = -4
ENV = "WEAKGEN_MALLOC"


def _glibc():
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError outside glibc
        return libc
    except (OSError, AttributeError):
        return None


def retain_freed_memory() -> bool:
    """Apply the settings above to this process (idempotent); False where they do not apply or are opted out."""
    if os.environ.get(ENV, "retain") == "system":
        return False
    libc = _glibc()
    if libc is None:
        return False
    # mallopt takes an int; -1 becomes SIZE_MAX in glibc's size_t threshold, i.e. never trim
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))
