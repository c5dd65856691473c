"""CelebA ingestion on small fixtures in the official raw layout (zip of aligned JPEGs + the three text files)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from stages.datasets import celeba
from stages.errors import DataError


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return celeba.write_synthetic_celeba(tmp_path_factory.mktemp("celeba"), n_images=30, n_identities=8, seed=1)


def test_synthetic_source_has_the_official_layout(raw):
    lines = (raw / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "30" and lines[1].split() == celeba.ATTRIBUTES
    assert lines[2].split()[0] == "000001.jpg" and set(lines[2].split()[1:]) <= {"-1", "1"}
    with zipfile.ZipFile(raw / "img_align_celeba.zip") as zf:
        assert "img_align_celeba/000001.jpg" in zf.namelist()
        with Image.open(io.BytesIO(zf.read("img_align_celeba/000001.jpg"))) as im:
            assert im.size == (178, 218) and im.format == "JPEG"


def test_load_gives_identity_disjoint_splits_and_the_file_attributes(raw):
    out = celeba.load_celeba(raw, 16, verify=False)
    total = sum(len(out[f"{s}_images"]) for s in celeba.SPLITS)
    assert total == 30
    assert out["train_images"].shape[1:] == (3, 16, 16) and out["train_images"].dtype == np.uint8
    ids = [set(out[f"{s}_identity"].tolist()) for s in celeba.SPLITS]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    # attributes are the file's -1/1 values mapped to 0/1, aligned with the images
    rows = {r.split()[0]: r.split()[1:] for r in (raw / "list_attr_celeba.txt").read_text().splitlines()[2:]}
    part = dict(line.split() for line in (raw / "list_eval_partition.txt").read_text().splitlines())
    train_names = [n for n in sorted(rows) if part[n] == "0"]
    expected = (np.array([rows[n] for n in train_names], int) + 1) // 2
    assert np.array_equal(out["train_attrs"], expected)


def test_identity_disjoint_split_fixes_an_identity_spanning_two_splits():
    identity = np.array([1, 1, 1, 2, 2, 3])
    partition = np.array([0, 0, 2, 1, 1, 2])
    assert celeba.identity_disjoint_split(identity, partition).tolist() == [0, 0, 0, 1, 1, 2]


def test_crop_resize_takes_the_face_box():
    img = np.zeros((218, 178, 3), np.uint8)
    img[40:188, 15:163] = 200                      # exactly the 148x148 crop box
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")   # lossless: the crop must be exactly 200 everywhere
    out = celeba.crop_resize(buf.getvalue(), 8)
    assert out.shape == (3, 8, 8) and int(out.min()) == 200 and int(out.max()) == 200


def test_missing_files_say_where_to_get_them(tmp_path):
    (tmp_path / "list_attr_celeba.txt").write_text("0\n")
    with pytest.raises(DataError, match=r"img_align_celeba.zip, identity_CelebA.txt.*mmlab.*put the"):
        celeba.check_raw(tmp_path)


def test_checksum_mismatch_is_reported(raw):
    with pytest.raises(DataError, match="md5"):
        celeba.check_raw(raw, verify=True)


def test_malformed_annotation_and_wrong_image_size(tmp_path, raw):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in celeba.RAW_FILES:
        (bad / f).write_bytes((raw / f).read_bytes())
    lines = (bad / "list_attr_celeba.txt").read_text().splitlines()
    (bad / "list_attr_celeba.txt").write_text("\n".join(lines[:2] + [lines[2] + " 1"] + lines[3:]) + "\n")
    with pytest.raises(DataError, match="line 3 has 42 fields"):
        celeba.load_celeba(bad, 16, verify=False)
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, format="JPEG")
    with pytest.raises(DataError, match="expected the aligned 178x218"):
        celeba.crop_resize(buf.getvalue(), 16, "x.jpg")
    with pytest.raises(DataError, match="not a readable JPEG"):
        celeba.crop_resize(b"not a jpeg", 16, "x.jpg")


def test_download_stage_without_files_exits_2_with_instructions(project):
    from tests.conftest import stage

    proc = stage("download", "--dataset", "celeba", "--profile", "paper", cwd=project, check=False)
    assert proc.returncode == 2
    assert "data/raw/celeba" in proc.stderr and "mmlab" in proc.stderr
    assert not (project / "data" / "raw" / "celeba" / "img_align_celeba.zip").exists()
