"""Human3.6M (SRVP protocol, anchors §1.2): per-subject videos -> 64x64 RGB clips at 6.25 Hz.

Human3.6M is licence-gated: nothing can be downloaded for you. Register at http://vision.imar.ro/human3.6m/,
download the per-subject video archives (``Videos`` of subjects S1, S5, S6, S7, S8, S9 and S11) and either

* put the archives (``.tgz`` / ``.tar.gz`` / ``.zip``, one per subject) in ``data/raw/h36m/archives/`` and run
  ``python -m stages.download --dataset h36m --profile paper`` (safe extraction into data/raw/h36m/), or
* extract them yourself so that ``data/raw/h36m/S<n>/Videos/*.mp4`` exist.

Protocol: files whose name starts with ``_`` (the ``_ALL`` videos, several actions) are excluded; every frame is
cropped to the box (100, 100, 900, 900) with Pillow, then resized to 64x64 with Lanczos; every 8th frame is kept
(50 Hz -> 6.25 Hz). Subjects 1, 5, 6, 7, 8 train (5% of their videos held out for validation), 9 and 11 test;
the fixed test set is 1,000 clips of 53 subsampled frames (seed 42), 8 conditioning + 45 predicted (A11).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stages.datasets.fetch import safe_extract
from stages.datasets.natural import preprocess_natural
from stages.datasets.videos import count_frames, decode_video, pack_videos, validation_split, write_video
from stages.errors import DataError

TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)
CROP_BOX = (100, 100, 900, 900)
SUBSAMPLING = 8
WHERE = ("Human3.6M is licence-gated: register at http://vision.imar.ro/human3.6m/, download the Videos archive of "
         "each subject (S1, S5, S6, S7, S8, S9, S11) and put the archives in data/raw/h36m/archives/ (then run "
         "`python -m stages.download --dataset h36m --profile paper`) or extract them to data/raw/h36m/S<n>/Videos/*.mp4.")


def import_archives(raw_dir: str | Path) -> list[Path]:
    """Safely extract every per-subject archive of ``raw_dir/archives`` and move its ``S<n>/Videos`` into place."""
    raw_dir = Path(raw_dir)
    archives = sorted(p for p in (raw_dir / "archives").glob("*") if p.suffix in (".tgz", ".gz", ".zip", ".tar"))
    if not archives:
        if all((raw_dir / f"S{s}" / "Videos").is_dir() for s in TRAIN_SUBJECTS + TEST_SUBJECTS):
            return []
        raise DataError(f"{raw_dir / 'archives'}: no archive found. {WHERE}")
    moved = []
    for archive in archives:
        tmp = safe_extract(archive, raw_dir / f".extract-{archive.name}", overwrite=True)
        try:
            videos = [p for p in tmp.rglob("Videos") if p.is_dir() and p.parent.name.startswith("S")]
            if not videos:
                raise DataError(f"{archive}: holds no S<n>/Videos folder; is it a Human3.6M video archive? {WHERE}")
            for folder in videos:
                dest = raw_dir / folder.parent.name / "Videos"
                check_links_after_move(folder, dest, archive)
                if dest.exists():
                    shutil.rmtree(dest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(folder), str(dest))
                moved.append(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return moved


def check_links_after_move(folder: Path, dest: Path, archive: Path) -> None:
    """Refuse links that would point outside ``dest`` once ``folder`` is moved there: safe extraction only
    checked them against the extraction folder, and a link that was inside it can leave once moved."""
    links = [folder] if folder.is_symlink() else []
    links += [p for p in folder.rglob("*") if p.is_symlink()]
    for link in links:
        where = dest / link.relative_to(folder) if link != folder else dest
        target = os.path.normpath(where.parent / os.readlink(link))
        if os.path.commonpath([os.path.abspath(target), os.path.abspath(dest)]) != os.path.abspath(dest):
            raise DataError(f"{archive}: {link.relative_to(folder.parent.parent)} is a link that would point to "
                            f"{target}, outside {dest}, once imported; use the official archives. {WHERE}")


def list_videos(raw_dir: str | Path, subjects) -> dict[int, list[Path]]:
    """subject -> its .mp4 files (``_ALL`` ones excluded); a missing subject folder is an error naming it."""
    raw_dir = Path(raw_dir)
    out = {}
    for s in subjects:
        folder = raw_dir / f"S{s}" / "Videos"
        if not folder.is_dir():
            raise DataError(f"{folder}: subject folder missing. {WHERE}")
        out[s] = sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("_"))
        if not out[s]:
            raise DataError(f"{folder}: no .mp4 video (besides _ALL ones). {WHERE}")
    return out


def process_frame(img: Image.Image, size: int, crop_box=CROP_BOX) -> np.ndarray:
    """Pillow crop then Lanczos resize, sequentially as the SRVP converter does: uint8 [3, size, size]."""
    return np.asarray(img.crop(tuple(crop_box)).resize((size, size), Image.LANCZOS), np.uint8).transpose(2, 0, 1)


def decode_h36m(path: str | Path, size: int, crop_box=CROP_BOX, keep: np.ndarray | None = None) -> np.ndarray:
    """uint8 [T, 3, size, size] of the frames of ``path`` whose index is in ``keep`` (all by default)."""
    wanted = None if keep is None else set(int(i) for i in keep)
    frames = [process_frame(f.to_image(), size, crop_box)
              for i, f in enumerate(decode_video(path)) if wanted is None or i in wanted]
    return np.stack(frames)


def build_h36m(raw_dir: str | Path, cfg: dict) -> dict[str, dict[str, np.ndarray]]:
    size, sub, crop = cfg["frame_size"], cfg["subsampling"], tuple(cfg["crop_box"])
    train = list_videos(raw_dir, cfg.get("train_subjects") or TRAIN_SUBJECTS)
    test = list_videos(raw_dir, cfg.get("test_subjects") or TEST_SUBJECTS)
    train_files = [p for s in sorted(train) for p in train[s]]
    # Training videos are stored already subsampled (phase 0): 8x less memory than the 50 Hz frames.
    decoded = [decode_h36m(p, size, crop)[::sub] for p in tqdm(train_files, desc="decode H3.6M train", unit="video")]
    val_idx = set(validation_split(len(train_files), cfg["val_fraction"], cfg["val_seed"]).tolist())
    splits = {}
    for split, keep in (("train", lambda i: i not in val_idx), ("val", lambda i: i in val_idx)):
        idx = [i for i in range(len(train_files)) if keep(i)]
        frames, offsets = pack_videos([decoded[i] for i in idx])
        splits[split] = {"frames": frames, "offsets": offsets,
                         "names": np.array([f"{p.parent.parent.name}-{p.name}" for p in (train_files[i] for i in idx)])}
    # Test clips are drawn from the 50 Hz frame counts (any phase), then only their frames are decoded.
    test_files = [p for s in sorted(test) for p in test[s]]
    lengths = np.array([count_frames(p) for p in test_files])
    span = (cfg["test_frames"] - 1) * sub + 1
    if (lengths >= span).sum() == 0:
        raise DataError(f"no test video has the {span} frames a {cfg['test_frames']}-frame clip at subsampling {sub} needs.")
    rng = np.random.RandomState(cfg["test_seed"])
    clips = []
    while len(clips) < cfg["test_clips"]:
        v = int(rng.randint(len(test_files)))
        if lengths[v] >= span:
            clips.append((v, int(rng.randint(lengths[v] - span + 1))))
    videos = np.empty((len(clips), cfg["test_frames"], 3, size, size), np.uint8)
    for v in tqdm(sorted({v for v, _ in clips}), desc="decode H3.6M test", unit="video"):
        mine = [(i, s) for i, (vv, s) in enumerate(clips) if vv == v]
        keep = np.unique(np.concatenate([s + np.arange(cfg["test_frames"]) * sub for _, s in mine]))
        frames = decode_h36m(test_files[v], size, crop, keep)
        for i, s in mine:
            videos[i] = frames[np.searchsorted(keep, s + np.arange(cfg["test_frames"]) * sub)]
    splits["test"] = {"videos": videos, "files": np.array([f"{test_files[v].parent.parent.name}-{test_files[v].name}"
                                                           for v, _ in clips]),
                      "starts": np.array([s for _, s in clips])}
    return splits


def write_synthetic_h36m(raw_dir: str | Path, subjects, *, videos_per_subject: int = 2, n_frames: int = 120,
                         size: int = 250, seed: int = 0) -> list[Path]:
    """Small Human3.6M-format source: ``S<n>/Videos/<Action> <k>.<camera>.mp4`` RGB MPEG-4 videos (plus one
    ``_ALL`` video per subject, which ingestion must skip). Frames are ``size`` x ``size`` (1000 in the real data)."""
    raw_dir = Path(raw_dir)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    written = []
    for s in subjects:
        folder = raw_dir / f"S{s}" / "Videos"
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"Walking {k}.5461{k}.mp4" for k in range(videos_per_subject)] + ["_ALL 1.54138969.mp4"]
        for name in names:
            phase, freq = rng.uniform(0, 6.28), rng.uniform(0.02, 0.05)
            bg = np.stack([0.5 + 0.2 * np.sin(8 * xx + s), 0.4 + 0.1 * yy, 0.45 + 0 * xx], -1)
            frames = np.empty((n_frames, size, size, 3), np.uint8)
            for t in range(n_frames):
                cx, cy = 0.5 + 0.25 * np.sin(phase + freq * t), 0.5 + 0.1 * np.cos(phase + 2 * freq * t)
                body = (np.abs(xx - cx) < 0.06) & (np.abs(yy - cy) < 0.18)
                frames[t] = (np.where(body[..., None], [0.8, 0.2, 0.2], bg) * 255).astype(np.uint8)
            write_video(folder / name, frames, fps=50)
            written.append(folder / name)
    return written


def preprocess(cfg: dict, profile: str) -> list[str]:
    def synthetic(raw: Path, s: dict) -> None:
        write_synthetic_h36m(raw, list(s["train_subjects"]) + list(s["test_subjects"]),
                             videos_per_subject=s["videos_per_subject"], n_frames=s["n_frames"], size=s["size"],
                             seed=s["seed"])
    return preprocess_natural(cfg, profile, build_h36m, synthetic)
