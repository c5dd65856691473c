"""Chapter 4.2 files beyond paths.py's: the reference experiment's arrays reused by every model evaluation."""
from __future__ import annotations

from stages import paths


def reference_file(profile: str, experiment: str) -> str:
    return f"{paths.run_dir(profile, experiment)}/reference.npz"


def accuracy_table(profile: str) -> str:
    return "reports/tables/extra_gmv_attribute_accuracy.csv"
