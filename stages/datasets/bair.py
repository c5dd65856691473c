"""BAIR robot pushing, action-free (SRVP protocol, anchors §1.2): the official tar -> 30-frame 64x64 RGB clips.

Raw layout: ``data/raw/bair/softmotion30_44k/{train,test}/traj_<a>_to_<b>.tfrecords``, each record a
``tf.train.Example`` whose feature ``<i>/image_aux1/encoded`` (i = 0..29) holds the raw 64x64x3 RGB bytes
of frame i. Read here with our own TFRecord reader, CRC checks on. The test set is the 256 test videos
(first 30 frames), 2 conditioning + 28 predicted; a fixed 5% of the training videos is held out for validation.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages.datasets.fetch import download, safe_extract
from stages.datasets.natural import preprocess_natural
from stages.datasets.tfrecord import encode_example, parse_example, read_records, write_records
from stages.datasets.videos import pack_videos, validation_split
from stages.errors import DataError

URL = "http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar"
# No published checksum exists for the tar (~30 GB); it is checked by safe extraction (a truncated tar fails
# with the file named) and every record by its CRC-32C while reading.
SHA256 = None
N_FRAMES = 30
RAW_SIZE = 64
FEATURE = "{i}/image_aux1/encoded"


def download_bair(raw_dir: str | Path, *, url: str = URL, progress: bool = True) -> Path:
    raw_dir = Path(raw_dir)
    archive = download(url, raw_dir / "bair_robot_pushing_dataset_v0.tar", sha256=SHA256, progress=progress)
    if (raw_dir / "softmotion30_44k").is_dir():
        return raw_dir
    extracted = safe_extract(archive, raw_dir / ".extract", overwrite=True)
    (extracted / "softmotion30_44k").rename(raw_dir / "softmotion30_44k")
    extracted.rmdir()
    return raw_dir


def record_files(raw_dir: str | Path, split: str) -> list[Path]:
    """The split's .tfrecords, in numeric order of their first trajectory (traj_0_to_255, traj_256_to_511, ...)."""
    folder = Path(raw_dir) / "softmotion30_44k" / split
    files = list(folder.glob("*.tfrecords"))
    if not files:
        raise DataError(f"{folder}: no .tfrecords file; run `python -m stages.download --dataset bair --profile paper`.")
    return sorted(files, key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)] or [0])


def decode_example(record: bytes, path: Path, n_frames: int = N_FRAMES) -> np.ndarray:
    """uint8 [n_frames, 3, 64, 64] from one serialised Example."""
    try:
        feats = parse_example(record)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: a record is not a valid tf.train.Example ({exc}).") from exc
    frames = []
    for i in range(n_frames):
        values = feats.get(FEATURE.format(i=i))
        if not values or len(values[0]) != RAW_SIZE * RAW_SIZE * 3:
            raise DataError(f"{path}: feature {FEATURE.format(i=i)} missing or not a raw 64x64 RGB frame.")
        frames.append(np.frombuffer(values[0], np.uint8).reshape(RAW_SIZE, RAW_SIZE, 3))
    return np.stack(frames).transpose(0, 3, 1, 2)


def downscale(videos: np.ndarray, size: int) -> np.ndarray:
    """Area-average [..., C, 64, 64] down to size x size (smoke profile only; the paper keeps 64)."""
    if size == RAW_SIZE:
        return videos
    if RAW_SIZE % size:
        raise DataError(f"BAIR frame_size must divide 64, got {size}")
    f = RAW_SIZE // size
    shape = videos.shape[:-2] + (size, f, size, f)
    return videos.reshape(shape).mean(axis=(-3, -1)).round().astype(np.uint8)


def read_split(raw_dir: str | Path, split: str, size: int, limit: int | None = None) -> list[np.ndarray]:
    videos = []
    for path in tqdm(record_files(raw_dir, split), desc=f"read BAIR {split}", unit="file"):
        for record in read_records(path):
            videos.append(downscale(decode_example(record, path), size))
            if limit is not None and len(videos) >= limit:
                return videos
    return videos


def build_bair(raw_dir: str | Path, cfg: dict) -> dict[str, dict[str, np.ndarray]]:
    size = cfg["frame_size"]
    test = read_split(raw_dir, "test", size, cfg.get("test_clips"))
    train = read_split(raw_dir, "train", size, cfg.get("max_train_videos"))
    val_idx = set(validation_split(len(train), cfg["val_fraction"], cfg["val_seed"]).tolist())
    splits = {}
    for split, idx in (("train", [i for i in range(len(train)) if i not in val_idx]), ("val", sorted(val_idx))):
        frames, offsets = pack_videos([train[i] for i in idx])
        splits[split] = {"frames": frames, "offsets": offsets, "names": np.array([str(i) for i in idx])}
    splits["test"] = {"videos": np.stack(test)[:, :cfg["test_frames"]]}
    return splits


def write_synthetic_bair(raw_dir: str | Path, n_train: int, n_test: int, *, per_file: int = 4, seed: int = 0) -> list[Path]:
    """Small BAIR-format source: genuine TFRecord files of tf.train.Example records with 30 raw 64x64 RGB frames
    under ``<i>/image_aux1/encoded`` (plus the ``<i>/action`` and ``<i>/endeffector_pos`` float features)."""
    raw_dir = Path(raw_dir)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:RAW_SIZE, 0:RAW_SIZE]
    written = []
    for split, n in (("train", n_train), ("test", n_test)):
        folder = raw_dir / "softmotion30_44k" / split
        folder.mkdir(parents=True, exist_ok=True)
        for first in range(0, n, per_file):
            records = []
            for _ in range(min(per_file, n - first)):
                pos, vel = rng.uniform(16, 48, 2), rng.uniform(-2, 2, 2)
                objects = rng.uniform(10, 54, (2, 2))
                feats = {}
                for i in range(N_FRAMES):
                    pos = np.clip(pos + vel, 6, 58)
                    img = np.stack([120 + 0 * xx, 100 + xx // 2, 90 + yy // 2], -1).astype(np.uint8)
                    for oy, ox in objects:
                        img[(np.abs(yy - oy) < 4) & (np.abs(xx - ox) < 4)] = (30, 160, 40)
                    img[(np.abs(yy - pos[0]) < 5) & (np.abs(xx - pos[1]) < 5)] = (200, 200, 210)
                    feats[FEATURE.format(i=i)] = [img.tobytes()]
                    feats[f"{i}/action"] = [float(v) for v in vel] + [0.0, 0.0]
                    feats[f"{i}/endeffector_pos"] = [float(pos[0]), float(pos[1]), 0.0]
                records.append(encode_example(feats))
            path = folder / f"traj_{first}_to_{first + per_file - 1}.tfrecords"
            write_records(path, records)
            written.append(path)
    return written


def preprocess(cfg: dict, profile: str) -> list[str]:
    def synthetic(raw: Path, s: dict) -> None:
        write_synthetic_bair(raw, s["n_train"], s["n_test"], seed=s["seed"])
    return preprocess_natural(cfg, profile, build_bair, synthetic)
