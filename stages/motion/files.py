"""Where chapter 4.1's files are (no torch import: the graph builder, read by every dry run, uses this)."""
from __future__ import annotations

from stages import paths

PROCESSED = "motion.npz"   # written by stages/datasets/emilya.py (and bandai.py)


def processed_file(profile: str, dataset: str) -> str:
    return f"{paths.processed_dir(profile, dataset)}/{PROCESSED}"
