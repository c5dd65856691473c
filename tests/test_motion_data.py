"""Emilya import: the procedural look-alike through the real reader, features, the 60/20/20 block split,
and every bad input the issue lists (DataError naming the file and the fix, nothing written)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from stages.datasets import emilya
from stages.datasets.bvh import read_bvh, write_bvh
from stages.errors import DataError

ACTS, EMOS = ["walk", "knock"], ["neutral", "anger", "sadness"]
CFG = dict(name="emilya", source="import", frame_rate=30, joints=23, activities=ACTS, emotions=EMOS, window=8,
           stride=4, split=[0.6, 0.2, 0.2])


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return emilya.write_synthetic_emilya(tmp_path_factory.mktemp("emilya"), activities=ACTS, emotions=EMOS, actors=2,
                                         frames=60, frame_rate=30, seed=0)


@pytest.fixture
def raw_copy(raw, tmp_path) -> Path:
    import shutil
    return Path(shutil.copytree(raw, tmp_path / "raw"))


def windows(raw_dir, **cfg):
    return emilya.build_windows(emilya.read_manifest(raw_dir, ACTS, EMOS), {**CFG, **cfg})


def rewrite_manifest(raw_dir: Path, edit) -> None:
    path = raw_dir / emilya.MANIFEST
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows, fields = edit(rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def test_features_blocks_and_windows(raw):
    out = windows(raw)
    recordings = emilya.read_manifest(raw, ACTS, EMOS)
    assert len(recordings) == 2 * 3 * 2 and out["frames_train"].shape[1] == 69
    # 60 frames -> blocks of 36 / 12 / 12 frames -> 8, 2 and 2 windows of 8 frames every 4
    assert [len(out[f"starts_{s}"]) for s in emilya.SPLITS] == [12 * 8, 12 * 2, 12 * 2]
    assert out["frames_train"].min() == 0.0 and out["frames_train"].max() == 1.0
    for s, block in zip(emilya.SPLITS, (36, 12, 12)):
        starts = out[f"starts_{s}"]
        assert ((starts % block) + 8 <= block).all()            # no window straddles two recordings' blocks
        cells = {tuple(x) for x in out[f"labels_{s}"].tolist()}
        assert len(cells) == 12                                 # every (activity, emotion, actor) in every split
    # the features are the unwrapped angles of the first recording, min-max scaled with train extrema
    first = read_bvh(recordings[0].path)
    feats = emilya.recording_features(first, False)
    lo, hi = out["feature_min"], out["feature_max"]
    expect = np.clip((feats[:36] - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
    np.testing.assert_allclose(out["frames_train"][:36], expect, atol=1e-5)


def test_unwrap_removes_360_degree_jumps(raw):
    m = read_bvh(emilya.read_manifest(raw, ACTS, EMOS)[0].path)
    m.values[30:, 5] += 360.0
    feats = emilya.recording_features(m, False)
    assert np.abs(np.diff(feats, axis=0)).max() < 180


def test_preprocess_synthetic_writes_motion_npz(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {**CFG, "source": "synthetic", "synthetic": {"actors": 2, "frames": 60, "seed": 0}}
    emilya.preprocess(cfg, "ci")
    with np.load(tmp_path / "data/processed/ci/emilya/motion.npz") as z:
        assert list(z["emotions"]) == EMOS and int(z["window"]) == 8 and z["offsets"].shape == (23, 3)


def test_missing_folder_says_how_to_obtain_emilya(tmp_path):
    with pytest.raises(DataError, match="ask its authors"):
        emilya.read_manifest(tmp_path / "nothing", ACTS, EMOS)
    with pytest.raises(DataError, match="manifest.csv not found"):
        emilya.check_raw(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda rows: (rows, ["file", "actor", "activity"]), "lacks the column"),
    (lambda rows: (rows + rows[:1], list(rows[0])), "listed twice"),
    (lambda rows: ([{**rows[0], "emotion": "boredom"}] + rows[1:], list(rows[0])), "emotion 'boredom'"),
    (lambda rows: ([{**rows[0], "file": "bvh/absent.bvh"}] + rows[1:], list(rows[0])), "does not exist"),
])
def test_bad_manifest(raw_copy, edit, message):
    rewrite_manifest(raw_copy, lambda rows: edit([{k: r[k] for k in emilya.COLUMNS} for r in rows]))
    with pytest.raises(DataError, match=message) as err:
        emilya.read_manifest(raw_copy, ACTS, EMOS)
    assert "manifest.csv" in str(err.value)


def test_manifest_absent(raw_copy):
    (raw_copy / emilya.MANIFEST).unlink()
    with pytest.raises(DataError, match="manifest.csv is missing"):
        emilya.read_manifest(raw_copy, ACTS, EMOS)


def _edit_first_bvh(raw_dir: Path, change) -> Path:
    rec = emilya.read_manifest(raw_dir, ACTS, EMOS)[1]
    m = read_bvh(rec.path)
    change(m)
    write_bvh(rec.path, m)
    return rec.path


def test_frame_rate_joint_count_and_skeleton_mismatch(raw_copy):
    path = _edit_first_bvh(raw_copy, lambda m: setattr(m, "frame_time", 1 / 120))
    with pytest.raises(DataError, match=r"120.00 Hz.*30 Hz") as err:
        windows(raw_copy)
    assert str(path) in str(err.value)
    with pytest.raises(DataError, match="23 joints, the dataset expects 22"):
        windows(raw_copy, joints=22)


def test_joint_names_must_match_the_first_file(raw_copy):
    _edit_first_bvh(raw_copy, lambda m: m.skeleton.names.__setitem__(3, "Spine3"))
    with pytest.raises(DataError, match="joint 3 is 'Spine3'.*'Chest3'"):
        windows(raw_copy)


def test_short_recordings_are_skipped_and_empty_cells_are_errors(raw_copy):
    path = _edit_first_bvh(raw_copy, lambda m: setattr(m, "values", m.values[:6]))
    # the (walk, neutral, actor2) cell keeps no window at all: an error naming the cell and the fix
    with pytest.raises(DataError, match=r"\(walk, neutral, actor2\) has no window .* in the train split"):
        windows(raw_copy)
    # with another recording of that cell, the short one is only skipped and counted
    rewrite_manifest(raw_copy, lambda rows: (rows + [{**rows[0], "file": "bvh/extra.bvh", "actor": "actor2"}],
                                             list(rows[0])))
    (raw_copy / "bvh/extra.bvh").write_bytes((raw_copy / "bvh/actor1_walk_neutral.bvh").read_bytes())
    out = windows(raw_copy)
    assert list(out["skipped"]) == [path.name]
