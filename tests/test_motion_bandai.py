"""Bandai-Namco-Research-Motiondataset-1: per-file download (pinned, SHA-256 checked, resumable) from a local
mirror holding the 8 real files of ../shared, then the chapter's preprocessing on them."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from stages.datasets import bandai
from stages.datasets.emilya import build_windows, read_manifest
from stages.errors import DataError

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "mocap-bandai-sample" / "data"


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    if not any(SAMPLE.glob("*.bvh")):
        pytest.skip(f"the real Bandai-Namco sample is absent ({SAMPLE}); this test needs ../shared")
    served = tmp_path / "mirror"
    shutil.copytree(SAMPLE, served)
    sums = bandai.checksums()
    subset = tmp_path / "sums.txt"
    subset.write_text("".join(f"{sums[p.name]}  {p.name}\n" for p in sorted(served.iterdir())))
    monkeypatch.setattr(bandai, "CHECKSUMS", subset)
    monkeypatch.setenv(bandai.URL_ENV, served.as_uri())
    return served


def test_project_checksums_cover_the_dataset():
    sums = bandai.checksums()
    assert sum(n.endswith(".bvh") for n in sums) == 174 and sum(n.endswith(".json") for n in sums) == 175
    assert all(len(d) == 64 for d in sums.values())


def test_download_verifies_resumes_and_preprocesses(mirror, tmp_path):
    raw = tmp_path / "raw"
    # a download cut short: the .part holds the first bytes, the rest is fetched with a Range request
    name = "dataset-1_walk_sad_001.bvh"
    (raw / "data").mkdir(parents=True)
    (raw / "data" / f"{name}.part").write_bytes((mirror / name).read_bytes()[:1000])
    bandai.download(raw, progress=False)
    assert (raw / "data" / name).read_bytes() == (mirror / name).read_bytes()
    cfg = dict(name="bandai1", frame_rate=30, joints=22, activities=bandai.CONTENTS, emotions=bandai.STYLES,
               window=16, stride=4, split=[0.6, 0.2, 0.2])
    recordings = read_manifest(raw, cfg["activities"], cfg["emotions"])
    assert {(r.activity, r.emotion) for r in recordings} == {(a, s) for a in ("walk", "bow")
                                                              for s in ("normal", "happy", "sad", "angry")}
    out = build_windows(recordings, cfg)
    assert out["frames_train"].shape[1] == 66 and len(out["starts_test"]) > 0
    assert np.isfinite(out["frames_train"]).all()


def test_checksum_mismatch_is_an_error(mirror, tmp_path):
    target = mirror / "dataset-1_bow_sad_001.bvh"
    target.write_bytes(target.read_bytes().replace(b"Frame Time", b"Frame time"))
    with pytest.raises(DataError, match="checksum mismatch"):
        bandai.download(tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw" / "manifest.csv").exists()
