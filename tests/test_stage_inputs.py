"""Stage CLIs on missing or corrupt inputs: status 2, a message naming the file and the fix, no output."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import stage

CI = ("--profile", "ci")


def _assert_clean_failure(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_missing_digits_stops_preprocess_of_smmnist(project):
    proc = stage("preprocess", "--dataset", "smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "data/processed/ci/mnist/digits.npz is missing", "preprocess")
    assert not (project / "data/processed/ci/smmnist").exists()


def test_corrupt_digits_stop_training_without_outputs(project):
    path = project / "data/processed/ci/mnist/digits.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip archive")
    proc = stage("train", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, str(path.relative_to(project)), "corrupt")
    assert not (project / "results/ci/srvp-smmnist/checkpoint.pt").exists()


def test_digits_without_validation_split(project):
    path = project / "data/processed/ci/mnist/digits.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, train=np.zeros((4, 28, 28), np.uint8))
    proc = stage("train", "--experiment", "svg-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "lacks arrays ['val']")


def test_missing_checkpoint_stops_sampling(project):
    test = project / "data/processed/ci/smmnist/test.npz"
    test.parent.mkdir(parents=True)
    np.savez(test, videos=np.zeros((2, 25, 1, 64, 64), np.uint8))
    proc = stage("sample", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "results/ci/srvp-smmnist/checkpoint.pt is missing", "train stage")
    assert not (project / "results/ci/srvp-smmnist/samples.h5").exists()


@pytest.mark.parametrize("frames", [10])
def test_test_set_too_short_for_protocol(project, frames):
    test = project / "data/processed/ci/smmnist/test.npz"
    test.parent.mkdir(parents=True)
    np.savez(test, videos=np.zeros((2, frames, 1, 64, 64), np.uint8))
    proc = stage("sample", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "test.npz", "[N, >= 25, C, H, W]")


def test_truncated_checkpoint(project):
    test = project / "data/processed/ci/smmnist/test.npz"
    test.parent.mkdir(parents=True)
    np.savez(test, videos=np.zeros((2, 25, 1, 64, 64), np.uint8))
    ckpt = project / "results/ci/svg-smmnist/checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"\x80\x02truncated")
    proc = stage("sample", "--experiment", "svg-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "checkpoint.pt is corrupt", "rerun its train stage")


def test_corrupt_samples_stop_evaluation(project):
    samples = project / "results/ci/srvp-smmnist/samples.h5"
    samples.parent.mkdir(parents=True)
    samples.write_bytes(b"\x89HDF\r\n garbage")
    proc = stage("evaluate", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "samples.h5 is corrupt", "rerun the sample stage")
    assert not (project / "results/ci/srvp-smmnist/metrics.json").exists()


def test_unknown_figure(project):
    proc = stage("figures", "--figure", "fig-9-99", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "unknown figure 'fig-9-99'")


def test_a_step_the_family_lacks_is_one_error_line(project):
    proc = stage("sample", "--experiment", "mvbigan-mnist-4views", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "model family mvbigan, chapter 3.1 MV-BiGAN", "has no sample step")
    assert proc.stderr.count("\n") == 1


def test_malformed_nproc_is_a_config_error(project, monkeypatch):
    monkeypatch.setenv("WEAKGEN_NPROC", "abc")
    proc = stage("train", "--experiment", "srvp-smmnist", *CI, cwd=project, check=False)
    _assert_clean_failure(proc, "WEAKGEN_NPROC='abc' is not a positive integer")
