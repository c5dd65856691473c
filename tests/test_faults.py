"""Faults and hostile input (issue table of faults): each test reproduces one way a run used to end in a
traceback, a partial file or a silently wrong result, and checks the clear error or the recovery."""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import stat
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from stages.datasets import flowers, h36m
from stages.datasets.natural import RUN_KEY, check_same_run
from stages.datasets.segmentation import TarReader
from stages.datasets.synthetic_sources import write_flowers
from stages.errors import DataError, DiskFull, WeakgenError, atomic_path, require_free_space, run_cli, write_json_atomic
from stages.training import RunSpec, exclusive_run, run_training
from tests.conftest import stage
from tests.test_training_skeleton import LineJob, _spec

CI = ("--profile", "ci")


def _clean_failure(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


class _Payload:
    """Unpickling this would create a file: a weights-only loader must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_as_training_state_is_never_executed(tmp_path, capsys):
    run_training(LineJob(), _spec(tmp_path, stop_after=3))
    marker = tmp_path / "executed"
    state = tmp_path / "run/train_state.pt"
    with open(state, "wb") as fh:
        torch.save({"evil": _Payload(marker)}, fh)
    assert run_training(LineJob(), _spec(tmp_path)) == 0
    assert not marker.exists() and state.with_name("train_state.pt.corrupt").exists()
    assert "moved to" in capsys.readouterr().out


def test_random_bytes_as_the_supervised_checkpoint(project):
    ckpt = project / "results/ci/supervised-flowers/checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(os.urandom(256))
    proc = stage("evaluate", "--experiment", "supervised-flowers", *CI, cwd=project, check=False)
    _clean_failure(proc, "checkpoint.pt is corrupt", "rerun its train stage")


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] = {}) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_h36m_links_are_checked_where_they_land(tmp_path):
    raw = tmp_path / "data/raw/h36m"
    (raw / "archives").mkdir(parents=True)
    # Inside the extraction folder the link stays in the archive; once S5/Videos moves to data/raw/h36m/S5
    # it would point at data/secret.
    _tar(raw / "archives/S5.tgz", {"secret": b"not a video", "deep/S5/Videos/.keep": b""},
         links={"deep/S5/Videos/walk.mp4": "../../../secret"})
    with pytest.raises(DataError, match="walk.mp4 is a link that would point to .*outside"):
        h36m.import_archives(raw)
    assert not (raw / "S5").exists()


def test_a_wrong_md5_is_caught_when_the_archive_is_read(tmp_path):
    write_flowers(tmp_path, 12)                       # genuine format, not the official bytes
    with pytest.raises(DataError, match="checksum mismatch"):
        flowers.load(tmp_path, 16)
    arrays, _ = flowers.load(tmp_path, 16, verify=False)  # the synthetic look-alike is read without checksums
    assert arrays["test_images"].shape[1:] == (16, 16, 3)


def test_a_wrong_md5_stops_the_preprocess_stage(project):
    write_flowers(project / "data/raw/flowers", 12)
    proc = stage("preprocess", "--dataset", "flowers", "--profile", "paper", cwd=project, check=False)
    _clean_failure(proc, "data/raw/flowers/", "checksum mismatch")
    assert not (project / "data/processed/paper/flowers").exists()


@pytest.mark.parametrize("name", ["../../jpg/image_00001.jpg", "/jpg/image_00001.jpg", "jpg/../../x.jpg"])
def test_archive_members_are_checked_before_normalisation(tmp_path, name):
    archive = _tar(tmp_path / "a.tgz", {"jpg/image_00002.jpg": b"x", name: b"y"})
    with pytest.raises(DataError, match="points outside the archive"):
        TarReader(archive)


def test_dot_slash_members_still_read(tmp_path):
    archive = _tar(tmp_path / "a.tgz", {"./jpg/image_00001.jpg": b"x"})
    with TarReader(archive) as reader:
        assert reader.names() == ["jpg/image_00001.jpg"] and reader.read("jpg/image_00001.jpg") == b"x"


def test_not_enough_space_is_caught_before_writing(tmp_path):
    with pytest.raises(DiskFull, match="MiB are needed"):
        require_free_space(tmp_path / "samples.h5", 2**62)


def test_a_full_disk_inside_a_write_is_an_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(DiskFull, match="no space left on the device while writing .*metrics.json"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_anywhere_in_a_stage_is_one_error_line(capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "results/x/run/train_log.jsonl")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on the device while writing results/x/run/train_log.jsonl")


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    stale = tmp_path / ".metrics.json.abc123.tmp"
    stale.write_text("half a file")
    other = tmp_path / ".samples.h5.abc123.tmp"
    other.write_text("another output's temporary")
    write_json_atomic(tmp_path / "metrics.json", {"ok": 1})
    assert not stale.exists() and other.exists()


def test_video_splits_from_different_preprocess_runs(tmp_path):
    files = []
    for split, run in (("test", "a"), ("train", "a"), ("val", "b")):
        np.savez(tmp_path / f"{split}.npz", **{RUN_KEY: np.array(run)})
        files.append(str(tmp_path / f"{split}.npz"))
    with pytest.raises(DataError, match="different preprocess runs"):
        check_same_run(files, "kth")
    np.savez(tmp_path / "val.npz", **{RUN_KEY: np.array("a")})
    check_same_run(files, "kth")


def test_a_second_training_of_the_same_run_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with exclusive_run(tmp_path / "run", "line"):
        with pytest.raises(WeakgenError, match=r"already being trained \(pid \d+ on .* since .*lock"):
            run_training(LineJob(), _spec(tmp_path))
    assert run_training(LineJob(), _spec(tmp_path)) == 0      # released when the holder ends


def test_string_scores_in_samples_are_a_data_error(project):
    samples = project / "results/ci/srvp-smmnist/samples.h5"
    samples.parent.mkdir(parents=True)
    with h5py.File(samples, "w") as h5:
        h5["scores/PSNR"] = np.array([[["high"]]], dtype="S4")
        h5["scores/SSIM"] = np.zeros((1, 1, 1), np.float32)
    proc = stage("evaluate", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _clean_failure(proc, "scores/PSNR holds", "not numbers")


def test_identical_runs_write_identical_bytes(tmp_path):
    for run in ("a", "b"):
        run_training(LineJob(), _spec(tmp_path / run, stop_after=5))
        run_training(LineJob(), _spec(tmp_path / run))
    for name in ("checkpoint.pt", "run/train_state.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "m.json", {})
        run_training(LineJob(), _spec(tmp_path))
    finally:
        os.umask(old)
    for path in (tmp_path / "m.json", tmp_path / "checkpoint.pt", tmp_path / "run/train_state.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
