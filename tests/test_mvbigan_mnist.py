"""stages.datasets.mnist: embedded digits, idx parsing, mirrors, validation split."""
from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from stages.datasets import mnist
from stages.errors import DataError


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
    """Write ``array`` in the idx format (big-endian), optionally gzipped."""
    codes = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B, np.dtype("i4"): 0x0C,
             np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(scope="module")
def embedded():
    return mnist.load_embedded_mnist()


def test_embedded_mnist(embedded):
    images, labels = embedded
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0
    assert mnist.embedded_mnist_path().name == "mnist_5k.csv.gz"


def test_embedded_split_is_deterministic(embedded):
    a, b = mnist.embedded_split(), mnist.embedded_split()
    assert a["train"].shape == (4000, 28, 28) and a["test"].shape == (1000, 28, 28)
    assert a["train_labels"].shape == (4000,) and a["test_labels"].shape == (1000,)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    # The documented rule: seed-0 permutation, first 4,000 train, last 1,000 test.
    perm = np.random.default_rng(0).permutation(5000)
    np.testing.assert_array_equal(a["train"], embedded[0][perm[:4000]])
    np.testing.assert_array_equal(a["test_labels"], embedded[1][perm[4000:]])


@pytest.mark.parametrize("dtype,gz", [("u1", True), ("u1", False), ("i4", True), ("f4", False), ("f8", True)])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    array = (rng.integers(0, 255, size=(7, 5, 3)) - (0 if dtype == "u1" else 100)).astype(dtype)
    path = write_idx(tmp_path / "x.idx", array, gz=gz)
    out = mnist.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_bad_files(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    raw = gzip.decompress(write_idx(tmp_path / "ok-idx3-ubyte.gz", images).read_bytes())

    truncated = tmp_path / "truncated-idx3-ubyte.gz"
    truncated.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(DataError, match=r"truncated-idx3-ubyte\.gz.*payload.*delete it and re-run"):
        mnist.read_idx(truncated)

    magic = tmp_path / "magic-idx3-ubyte.gz"
    magic.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    with pytest.raises(DataError, match=r"magic-idx3-ubyte\.gz.*magic"):
        mnist.read_idx(magic)

    badtype = tmp_path / "type-idx3-ubyte"
    badtype.write_bytes(raw[:2] + b"\x07" + raw[3:])
    with pytest.raises(DataError, match=r"type-idx3-ubyte.*magic"):
        mnist.read_idx(badtype)

    cut_gzip = tmp_path / "cutgz-idx3-ubyte.gz"
    cut_gzip.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(DataError, match=r"cutgz-idx3-ubyte\.gz"):
        mnist.read_idx(cut_gzip)

    with pytest.raises(DataError, match="not found"):
        mnist.read_idx(tmp_path / "absent.gz")


def _fake_official(raw_dir: Path, n_train: int = 6, n_test: int = 4) -> dict[str, str]:
    """Small files in the official layout; returns name -> md5 (for a patched MNIST_FILES)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    return {name: hashlib.md5(write_idx(raw_dir / name, a).read_bytes()).hexdigest() for name, a in arrays.items()}


def test_official_constants():
    assert set(mnist.MNIST_FILES) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                      "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert mnist.MNIST_FILES["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert any("yann.lecun.com" in m for m in mnist.MNIST_MIRRORS)
    assert any("ossci-datasets" in m for m in mnist.MNIST_MIRRORS)


def test_load_official_mnist(tmp_path):
    _fake_official(tmp_path)
    data = mnist.load_official_mnist(tmp_path, verify=False)
    assert data["train"].shape == (6, 28, 28) and data["test"].shape == (4, 28, 28)
    assert data["train_labels"].shape == (6,) and data["test"].dtype == np.uint8
    with pytest.raises(DataError, match="checksum mismatch"):  # synthetic files are not the official ones
        mnist.load_official_mnist(tmp_path, verify=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="4 images but .* 3 labels"):
        mnist.load_official_mnist(tmp_path, verify=False)


def test_download_mnist_tries_mirrors_in_order(tmp_path, monkeypatch):
    md5s = _fake_official(tmp_path / "mirror")
    monkeypatch.setattr(mnist, "MNIST_FILES", md5s)
    dead = (tmp_path / "dead").as_uri() + "/"
    paths = mnist.download_mnist(tmp_path / "raw", mirrors=[dead, (tmp_path / "mirror").as_uri()], progress=False)
    assert sorted(paths) == sorted(md5s)
    for name, path in paths.items():
        assert path.read_bytes() == (tmp_path / "mirror" / name).read_bytes()
    with pytest.raises(DataError, match=r"any mirror(.|\n)*dead(.|\n)*by hand"):
        mnist.download_mnist(tmp_path / "raw2", mirrors=[dead, dead + "again/"], progress=False)


@pytest.mark.parametrize("n_train,n_val", [(4000, 200), (60000, 3000), (20, 1)])
def test_validation_split(n_train, n_val):
    val = mnist.validation_split(n_train)
    assert len(val) == n_val and len(np.unique(val)) == n_val
    assert val.min() >= 0 and val.max() < n_train and np.all(np.diff(val) > 0)
    np.testing.assert_array_equal(val, mnist.validation_split(n_train, 0.05))
    train = np.setdiff1d(np.arange(n_train), val)
    assert len(train) + len(val) == n_train and not np.intersect1d(train, val).size
    if n_train > 100:
        assert not np.array_equal(val, mnist.validation_split(n_train, seed=1))
