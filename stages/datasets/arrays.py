"""Reading the processed uint8 arrays (.npz) that preprocess stages write, with errors that say the fix."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from stages.errors import DataError


def load_npz(path: str | Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Load arrays from a processed .npz, with a clear error when the file is missing or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing: run the preprocess stage first (snakemake {path}).")
    try:
        with np.load(path) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DataError(f"{path} lacks arrays {missing}: delete it and rerun its preprocess stage.")
            return {k: data[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its preprocess stage.") from exc
