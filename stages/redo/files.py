"""Where chapter 5's files are (no torch import: the graph builder reads this module)."""
from __future__ import annotations

from stages import paths


def experiment_datasets(cfg: dict) -> list[str]:
    """The experiment's dataset followed by the datasets merged into it (Flowers+LFW: no labels used)."""
    return [cfg["dataset"], *cfg["train"].get("merge_datasets", [])]


def data_files(cfg: dict, profile: str) -> list[str]:
    return [f for name in experiment_datasets(cfg) for f in paths.processed_files(profile, name)]


def segmentation_file(profile: str, exp: str) -> str:
    """Run 0's test masks and per-image scores, written by the evaluation for the figures."""
    return f"{paths.run_dir(profile, exp)}/segmentation.npz"
