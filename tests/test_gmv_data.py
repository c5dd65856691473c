"""Chapter 4.2 data: the pair sampler, CelebA's identity split, multi-view MNIST rendering and the 3D-Chairs
reader on procedural archives in the official layout (including broken ones)."""
import io
import tarfile

import numpy as np
import pytest

from stages.datasets import chairs, mvmnist
from stages.errors import ConfigError, DataError
from stages.gmv import data as gmv_data
from stages.gmv.data import TupleSampler


def test_tuples_share_their_anchor_content_and_singletons_repeat():
    content = np.array([5, 2, 5, 9, 2, 5, 7])           # 9 and 7 have one image each
    s = TupleSampler(content)
    idx = s.draw(np.random.default_rng(0), 2000, 3)
    assert idx.shape == (2000, 3)
    assert (content[idx] == content[idx[:, :1]]).all()
    single = idx[content[idx[:, 0]] == 9]
    assert len(single) and (single == 3).all()
    # Every image of a content is drawn as a partner (uniform within the content).
    partners_of_5 = idx[content[idx[:, 0]] == 5][:, 1:]
    assert set(np.unique(partners_of_5)) == {0, 2, 5}


def test_negative_pairs_never_share_content():
    content = np.array([1, 1, 1, 1, 2])
    pairs = TupleSampler(content).different(np.random.default_rng(1), 500, content)
    assert (content[pairs[:, 0]] != content[pairs[:, 1]]).all()
    with pytest.raises(DataError, match="two contents"):
        TupleSampler(np.zeros(3, int)).different(np.random.default_rng(0), 2, np.zeros(3, int))


def _faces(tmp_path, monkeypatch, identities):
    n = len(identities)
    arrays = {}
    for k, s in enumerate(("train", "val", "test")):
        part = np.array_split(np.arange(n), 3)[k]
        arrays[f"{s}_images"] = np.full((len(part), 3, 4, 4), k, np.uint8)
        arrays[f"{s}_identity"] = np.asarray(identities)[part]
        arrays[f"{s}_attrs"] = np.zeros((len(part), 40), np.int8)
    path = tmp_path / "faces.npz"
    np.savez(path, **arrays)
    monkeypatch.setattr(gmv_data.paths, "processed_files", lambda profile, ds: [str(path)])
    return path


def test_celeba_is_resplit_by_identity_number(tmp_path, monkeypatch):
    _faces(tmp_path, monkeypatch, [1, 4, 12, 3, 10, 11, 2, 10, 9])
    splits = gmv_data.celeba_splits("ci", 10)
    assert sorted(splits["train"].content) == [1, 2, 3, 4, 9]
    assert sorted(splits["test"].content) == [10, 10, 11, 12]
    assert splits["test"].attrs.shape == (4, 40)


def test_no_test_identity_names_the_file_and_key(tmp_path, monkeypatch):
    path = _faces(tmp_path, monkeypatch, [1, 2, 3])
    with pytest.raises(DataError, match="no test identity") as err:
        gmv_data.celeba_splits("ci", 10)
    assert str(path) in str(err.value) and "test_identities_from" in str(err.value)


def test_mvmnist_identity_view_keeps_the_digit_and_colours():
    digit = np.zeros((1, 28, 28), np.uint8)
    digit[0, 10:18, 12:16] = 255
    params = {"angle": np.zeros(1), "scale": np.ones(1), "dx": np.zeros(1), "dy": np.zeros(1),
              "stroke": np.zeros(1, int), "fg": np.array([[1.0, 0.0, 0.0]]), "bg": np.array([[0.0, 0.0, 1.0]])}
    img = mvmnist.render_views(digit, params)
    assert img.shape == (1, 3, 32, 32)
    np.testing.assert_array_equal(img[0, 0, 12:20, 14:18], 255)       # the stroke, red, moved by the 2-pixel pad
    assert img[0, 2, 0, 0] == 255 and img[0, 0, 0, 0] == 0              # blue background
    thick = mvmnist.render_views(digit, {**params, "stroke": np.ones(1, int)})
    thin = mvmnist.render_views(digit, {**params, "stroke": -np.ones(1, int)})
    assert (thin[0, 0] > 127).sum() < (img[0, 0] > 127).sum() < (thick[0, 0] > 127).sum()
    turned = mvmnist.render_views(digit, {**params, "angle": np.array([np.pi / 2])})
    assert (turned[0, 0] > 127).sum() == pytest.approx((img[0, 0] > 127).sum(), rel=0.2)
    assert not np.array_equal(turned, img)


def test_mvmnist_build_one_content_per_digit():
    digits = {"train": np.random.default_rng(0).integers(0, 255, (5, 28, 28)).astype(np.uint8),
              "test": np.zeros((2, 28, 28), np.uint8)}
    cfg = dict(n_train_digits=4, n_test_digits=2, n_views=3, max_rotation=30, min_scale=0.7, max_shift=0.1, seed=0)
    out = mvmnist.build(digits, cfg)
    assert out["train_images"].shape == (12, 3, 32, 32)
    np.testing.assert_array_equal(out["train_content"], np.repeat(np.arange(4), 3))
    with pytest.raises(ConfigError, match="n_test_digits"):
        mvmnist.build(digits, {**cfg, "n_test_digits": 3})


@pytest.fixture(scope="module")
def chair_tar(tmp_path_factory):
    return chairs.write_synthetic_chairs(tmp_path_factory.mktemp("chairs"), n_chairs=3, side=32, seed=0)


def test_synthetic_chairs_follow_the_official_layout(chair_tar):
    with tarfile.open(chair_tar) as tar:
        names = tar.getnames()
    assert len(names) == 3 * 62
    assert all(chairs.MEMBER.search(n) and n.startswith("rendered_chairs/") for n in names)
    assert any(n.endswith("image_061_p030_t348_r096.png") for n in names)


def test_read_chairs_crops_resizes_and_splits(chair_tar):
    read = chairs.read_chairs(chair_tar, 8)
    assert list(read) == sorted(read) and all(v.shape == (62, 3, 8, 8) for v in read.values())
    split = chairs.split_chairs(read, 2)
    assert split["train_images"].shape == (124, 3, 8, 8) and set(split["test_content"]) == {2}
    with pytest.raises(ConfigError, match="n_train_chairs"):
        chairs.split_chairs(read, 3)


def _copy_without(src, dest, drop: str):
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        for m in tin:
            if m.name != drop:
                tout.addfile(m, tin.extractfile(m))
    return dest


def test_chair_without_62_views_is_a_data_error(chair_tar, tmp_path):
    with tarfile.open(chair_tar) as tar:
        victim = tar.getnames()[5]
    bad = _copy_without(chair_tar, tmp_path / "rendered_chairs.tar", victim)
    with pytest.raises(DataError, match=r"without 62 PNG views: .*\(61 views\)"):
        chairs.read_chairs(bad, 8)


def test_missing_or_foreign_chairs_archive(tmp_path):
    with pytest.raises(DataError, match="missing: download https://www.di.ens.fr/willow"):
        chairs.read_chairs(tmp_path / "rendered_chairs.tar", 8)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match="not a readable tar"):
        chairs.read_chairs(tmp_path / "junk.tar", 8)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="not the rendered_chairs archive"):
        chairs.read_chairs(other, 8)
