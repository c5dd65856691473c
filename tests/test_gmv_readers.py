"""MVC-Cloth and 102-Flowers readers of chapter 4.2 on small files written here in the real layouts."""
import io
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from stages.datasets import flowers102, mvc
from stages.errors import ConfigError, DataError


def test_mvc_reads_items_pads_and_splits(tmp_path):
    root = mvc.write_synthetic_mvc(tmp_path / "mvc", n_items=5, n_views=3)
    items = mvc.read_mvc(root, 16)
    assert list(items) == [f"item{i:05d}" for i in range(5)] and items["item00000"].shape == (3, 3, 16, 16)
    # Portrait photos are padded with white: the left and right edges stay white.
    assert (items["item00000"][:, :, :, 0] > 240).all()
    split = mvc.split_items(items, 2, seed=0)
    assert len(split["test_images"]) == 6 and len(np.unique(split["test_content"])) == 2
    assert not set(split["test_content"]) & set(split["train_content"])
    np.testing.assert_array_equal(mvc.split_items(items, 2, seed=0)["test_content"], split["test_content"])
    with pytest.raises(ConfigError, match="n_test_items"):
        mvc.split_items(items, 5, seed=0)


def test_mvc_bad_layouts(tmp_path):
    with pytest.raises(DataError, match="is missing: MVC-Cloth is user-supplied"):
        mvc.read_mvc(tmp_path / "nope", 16)
    root = mvc.write_synthetic_mvc(tmp_path / "mvc", n_items=2, n_views=2)
    for f in list((root / "item00001").iterdir())[1:]:
        f.unlink()
    with pytest.raises(DataError, match=r"item00001 has 1 view\(s\); a pair needs at least 2"):
        mvc.read_mvc(root, 16)


def _flowers(raw, labels, n_images, key="labels"):
    raw.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(raw / "imagelabels.mat", {key: np.asarray(labels, np.uint8)[None]})
    with tarfile.open(raw / "102flowers.tgz", "w:gz") as tar:
        for i in range(1, n_images + 1):
            buf = io.BytesIO()
            Image.fromarray(np.full((20, 30, 3), 10 * i, np.uint8)).save(buf, format="JPEG", quality=95)
            info = tarfile.TarInfo(f"jpg/image_{i:05d}.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))


def test_flowers_category_is_content_and_all_images_train(tmp_path):
    _flowers(tmp_path, [3, 1, 3, 2, 1], 5)
    out = flowers102.load(tmp_path, 8, verify=False, n_images=5)
    assert out["train_images"].shape == (5, 3, 8, 8)
    np.testing.assert_array_equal(out["train_content"], [3, 1, 3, 2, 1])
    assert abs(int(out["train_images"][2].mean()) - 30) <= 2           # image_00003 is the third image
    np.testing.assert_array_equal(out["test_content"], [1, 2, 3])      # one display input per category


def test_flowers_bad_label_files(tmp_path):
    _flowers(tmp_path, [1, 2], 3)
    with pytest.raises(DataError, match="has 2 labels, expected 3"):
        flowers102.load(tmp_path, 8, verify=False, n_images=3)
    _flowers(tmp_path, [1, 2, 3], 3, key="classes")
    with pytest.raises(DataError, match="no 'labels' variable"):
        flowers102.load(tmp_path, 8, verify=False, n_images=3)
    (tmp_path / "imagelabels.mat").unlink()
    with pytest.raises(DataError, match="imagelabels.mat is missing"):
        flowers102.load(tmp_path, 8, verify=False, n_images=3)
    _flowers(tmp_path, [1, 2, 3], 3)
    with pytest.raises(DataError, match="MD5|md5|checksum"):
        flowers102.read_labels(tmp_path / "imagelabels.mat", verify=True)
