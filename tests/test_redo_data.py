"""Segmentation datasets: real-format ingestion of synthetic archives, split rules, bad inputs."""
import io
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from stages.datasets import cmnist, cub, flowers, lfw, synthetic_sources
from stages.datasets.segmentation import resize_crop
from stages.errors import DataError


def test_resize_shorter_side_nearest_then_centre_crop():
    arr = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4)          # h 6, w 4
    out = resize_crop(Image.fromarray(arr), 2)                     # -> 2 x 3 (w x h), crop rows 0..1 of 3
    assert out.shape == (2, 2)
    full = np.asarray(Image.fromarray(arr).resize((2, 3), Image.NEAREST))
    np.testing.assert_array_equal(out, full[0:2])  # round((3 - 2) / 2) = 0 (banker's rounding, like torchvision)


def test_flowers_synthetic_roundtrip_and_swapped_splits(tmp_path):
    synthetic_sources.write_flowers(tmp_path, 14, seed=1)
    ids = flowers.read_setid(tmp_path / "setid.mat", verify=False)
    arrays, has = flowers.load(tmp_path, 16, verify=False)
    assert has
    assert len(arrays["train_images"]) == len(ids["train"]) == len(scipy.io.loadmat(tmp_path / "setid.mat")["tstid"].ravel())
    assert arrays["test_images"].shape[1:] == (16, 16, 3)
    assert 0.05 < arrays["train_masks"].mean() < 0.6


def test_flowers_mask_rule():
    # anchors §2: background where R == 0 OR G == 0 OR B == 254; any single test suffices.
    seg = np.array([[[0, 0, 254], [0, 9, 200], [5, 0, 30], [5, 7, 254], [120, 30, 40], [9, 9, 253]]], np.uint8)
    np.testing.assert_array_equal(flowers.mask_from_segmim(seg), [[0, 0, 0, 0, 1, 1]])


def test_lfw_split_is_identity_disjoint_and_deterministic():
    names = [f"P{p}_x_{k:04d}" for p in range(40) for k in range(1, 1 + p % 4 + 1)]
    val, test = lfw.split_labelled(names)
    assert set(val) | set(test) == set(names) and not set(val) & set(test)
    assert not {lfw.person_of(n) for n in val} & {lfw.person_of(n) for n in test}
    assert abs(len(val) - round(len(names) * 1327 / 2927)) <= 3
    assert lfw.split_labelled(list(reversed(names))) == (val, test)


def test_lfw_synthetic_train_is_unlabelled(tmp_path):
    synthetic_sources.write_lfw(tmp_path, 16, seed=2)
    arrays, has = lfw.load(tmp_path, 16, verify=False)
    assert not has and arrays["train_masks"].shape[0] == 0
    assert len(arrays["val_images"]) == len(arrays["val_masks"]) > 0


def test_cub_default_split_sizes():
    split = cub.default_split(np.arange(1, 11789))
    assert [len(split[s]) for s in ("train", "val", "test")] == [10000, 788, 1000]
    assert len(np.unique(np.concatenate(list(split.values())))) == 11788


def test_cub_split_file_naming_a_missing_image(tmp_path):
    synthetic_sources.write_cub(tmp_path, 8, seed=0)
    (tmp_path / "train_val_test_split.txt").write_text("1 0\n2 1\n99 2\n")
    with pytest.raises(DataError, match="99"):
        cub.load(tmp_path, 16)


def _drop_member(archive, prefix):
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    with tarfile.open(archive, "w:gz") as tar:
        for m, data in members:
            if not m.name.startswith(prefix):
                tar.addfile(m, io.BytesIO(data))


def test_bad_inputs_name_the_file(tmp_path):
    synthetic_sources.write_flowers(tmp_path, 12, seed=0)
    _drop_member(tmp_path / "102segmentations.tgz", "segmim/segmim_00003")
    with pytest.raises(DataError, match="segmim_00003"):
        flowers.load(tmp_path, 16, verify=False)
    (tmp_path / "102flowers.tgz").write_bytes(b"not a tar archive")
    with pytest.raises(DataError, match="102flowers.tgz"):
        flowers.load(tmp_path, 16, verify=False)
    (tmp_path / "102flowers.tgz").unlink()
    with pytest.raises(DataError, match="102flowers.tgz is missing"):
        flowers.load(tmp_path, 16, verify=False)


def test_cmnist_scenes():
    digits = np.zeros((4, 28, 28), np.uint8)
    digits[:, 8:20, 10:18] = 255
    imgs, masks = cmnist.make_scenes(digits, np.array([0, 1, 2, 3]), 5, 32, seed=0)
    assert imgs.shape == (5, 32, 32, 3) and masks.shape == (5, 32, 32)
    assert set(np.unique(masks)) <= {0, 1, 2} and (masks == 1).any() and (masks == 2).any()
    even = imgs[masks == 1].astype(float) / 255
    assert (even <= 0.34).all()                                      # even digits are dark
    odd = imgs[masks == 2].astype(float) / 255
    assert (odd >= 0.65).all()                                       # odd digits are bright
