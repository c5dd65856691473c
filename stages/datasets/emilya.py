"""Emilya (Fourati & Pelachaud, LREC 2014): emotional full-body motion capture, imported from the user's copy.

There is no public download. The user asks the authors for the BVH exports and puts them, with a
``manifest.csv`` (columns file, actor, activity, emotion; ``file`` relative to the folder), in
``data/raw/emilya/``; ``python -m stages.download --dataset emilya`` only checks that folder.

Preprocessing (shared with every BVH dataset, e.g. stages/datasets/bandai.py) turns each recording into
features and windows:

- features [T]: 3 Euler angles per joint (23 joints -> 69 values per frame), root orientation kept, root
  horizontal position dropped, vertical position appended only with ``vertical_position: true`` [I];
  angles unwrapped per recording [I]; min-max scaled to (0, 1) with the train split's extrema [I];
- split [T "across (activity, emotion, actor)"], our reading [I]: every recording is cut into contiguous
  60/20/20 time blocks (train / validation / test) and windows of ``window`` frames, every ``stride``
  frames, never straddle a block, so every (activity, emotion, actor) cell is in every split.

Written to ``data/processed/<profile>/<dataset>/motion.npz``: the scaled frames of every block, each split's
window starts into them and (activity, emotion, actor) labels, the scaling extrema and the skeleton (for
the stick figures). smoke / ci: ``write_synthetic_emilya`` writes a procedural look-alike (an Xsens-MVN-like
23-joint skeleton) in the real BVH format with its manifest.csv, read by the same code.
"""
from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages import paths
from stages.datasets.bvh import Motion, Skeleton, read_bvh, rotation_features, write_bvh
from stages.errors import ConfigError, DataError, atomic_path

MANIFEST = "manifest.csv"
COLUMNS = ("file", "actor", "activity", "emotion")
PROCESSED = "motion.npz"
SPLITS = ("train", "val", "test")
HOW_TO_OBTAIN = ("Emilya has no public download: ask its authors (N. Fourati and C. Pelachaud, LREC 2014) for the "
                 "BVH exports, then put them with a manifest.csv (columns file, actor, activity, emotion) in "
                 "data/raw/emilya/")


# ----------------------------------------------------------------------------------------------- manifest
@dataclass
class Recording:
    path: Path
    actor: str
    activity: str
    emotion: str


def read_manifest(raw_dir: str | os.PathLike, activities: list[str], emotions: list[str]) -> list[Recording]:
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir} does not exist. {HOW_TO_OBTAIN}.")
    manifest = raw_dir / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{manifest} is missing: write it (columns {', '.join(COLUMNS)}, one row per BVH file).")
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{manifest} lacks the column(s) {', '.join(missing)}: its header must be "
                            f"{','.join(COLUMNS)}.")
        rows = list(reader)
    out, seen = [], set()
    for n, row in enumerate(rows, start=2):
        name = row["file"].strip()
        if name in seen:
            raise DataError(f"{manifest} line {n}: '{name}' is listed twice; keep one row per file.")
        seen.add(name)
        for key, allowed in (("activity", activities), ("emotion", emotions)):
            if row[key] not in allowed:
                raise DataError(f"{manifest} line {n}: {key} '{row[key]}' is not one of the configured {key} list "
                                f"({', '.join(allowed)}): fix the row or the dataset's {key} list in params.yaml.")
        path = (raw_dir / name).resolve()
        if raw_dir.resolve() not in path.parents:
            raise DataError(f"{manifest} line {n}: '{name}' points outside {raw_dir}; use a relative path inside it.")
        if not path.is_file():
            raise DataError(f"{manifest} line {n}: '{name}' does not exist in {raw_dir}; add the file or drop the row.")
        out.append(Recording(path, row["actor"].strip(), row["activity"], row["emotion"]))
    if not out:
        raise DataError(f"{manifest} lists no recording: add one row per BVH file.")
    return out


def check_raw(raw_dir: str | os.PathLike) -> None:
    """``stages.download --dataset emilya``: nothing to fetch; check the user's folder and manifest."""
    raw_dir = Path(raw_dir)
    if not (raw_dir / MANIFEST).is_file():
        raise DataError(f"{raw_dir / MANIFEST} not found. {HOW_TO_OBTAIN}.")
    with open(raw_dir / MANIFEST, newline="") as fh:
        rows = list(csv.DictReader(fh))
    absent = [r.get("file") for r in rows if not (raw_dir / (r.get("file") or "")).is_file()]
    if absent:
        raise DataError(f"{raw_dir / MANIFEST} names {len(absent)} absent file(s), e.g. {absent[0]}: add them.")
    print(f"{raw_dir}: {len(rows)} recordings listed (labels are checked by preprocess)")


# ----------------------------------------------------------------------------------------------- features
def _check_skeleton(motion: Motion, ref: Skeleton | None, path: Path, cfg: dict) -> None:
    sk = motion.skeleton
    rate = 1.0 / motion.frame_time if motion.frame_time > 0 else float("inf")
    if abs(rate - cfg["frame_rate"]) > 0.01 * cfg["frame_rate"]:
        raise DataError(f"{path}: Frame Time {motion.frame_time:g} s is {rate:.2f} Hz, the dataset is configured at "
                        f"{cfg['frame_rate']} Hz: resample the file or fix datasets.{cfg['name']}.frame_rate.")
    if len(sk.names) != cfg["joints"]:
        raise DataError(f"{path}: {len(sk.names)} joints, the dataset expects {cfg['joints']}: export the full "
                        f"skeleton or fix datasets.{cfg['name']}.joints.")
    if ref is not None and (sk.names != ref.names or list(sk.parents) != list(ref.parents)):
        j = next(k for k in range(len(sk.names)) if sk.names[k] != ref.names[k] or sk.parents[k] != ref.parents[k])
        raise DataError(f"{path}: joint {j} is '{sk.names[j]}' (parent {sk.parents[j]}) where the first file has "
                        f"'{ref.names[j]}' (parent {ref.parents[j]}): every file must share one skeleton.")


def recording_features(motion: Motion, vertical_position: bool) -> np.ndarray:
    """[frames, D] angles (degrees, unwrapped in time) of every joint, plus the root height if asked."""
    angles = rotation_features(motion)                       # [F, J, 3]
    angles = np.unwrap(angles, period=360.0, axis=0)
    feats = angles.reshape(len(angles), -1)
    if vertical_position:
        col = motion.skeleton.columns(("Yposition",))[0, 0]
        if col < 0:
            raise DataError("vertical_position is true but the root has no Yposition channel; set it to false.")
        feats = np.concatenate([feats, motion.values[:, col:col + 1]], axis=1)
    return feats


def block_bounds(n_frames: int, fractions: list[float]) -> list[tuple[int, int]]:
    """Contiguous [start, end) frame blocks of a recording, one per split."""
    edges = np.round(np.cumsum([0.0, *fractions]) / sum(fractions) * n_frames).astype(int)
    return [(int(edges[k]), int(edges[k + 1])) for k in range(len(fractions))]


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    return np.arange(0, length - window + 1, stride) if length >= window else np.zeros(0, dtype=np.int64)


def build_windows(recordings: list[Recording], cfg: dict) -> dict[str, np.ndarray]:
    """Read, featurise, split and window every recording; the arrays of motion.npz."""
    activities, emotions = list(cfg["activities"]), list(cfg["emotions"])
    actors = sorted({r.actor for r in recordings})
    window, stride = cfg["window"], cfg["stride"]
    blocks: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    starts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    labels: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    offset = {s: 0 for s in SPLITS}
    ref, skipped = None, []
    for rec in recordings:
        motion = read_bvh(rec.path)
        _check_skeleton(motion, ref, rec.path, cfg)
        ref = ref or motion.skeleton
        if motion.n_frames < window:
            skipped.append(rec.path.name)
            continue
        feats = recording_features(motion, cfg.get("vertical_position", False)).astype(np.float32)
        label = [activities.index(rec.activity), emotions.index(rec.emotion), actors.index(rec.actor)]
        for split, (a, b) in zip(SPLITS, block_bounds(len(feats), cfg["split"])):
            st = window_starts(b - a, window, stride)
            blocks[split].append(feats[a:b])
            starts[split].append(st + offset[split])
            labels[split].append(np.tile(label, (len(st), 1)))
            offset[split] += b - a
    if ref is None or not blocks["train"]:
        raise DataError(f"every recording is shorter than a window of {window} frames: lower "
                        f"datasets.{cfg['name']}.window.")
    frames = {s: np.concatenate(blocks[s]) for s in SPLITS}
    lo, hi = frames["train"].min(axis=0), frames["train"].max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    out: dict[str, np.ndarray] = {}
    for s in SPLITS:
        out[f"frames_{s}"] = np.clip((frames[s] - lo) / scale, 0.0, 1.0).astype(np.float32)
        out[f"starts_{s}"] = np.concatenate(starts[s]).astype(np.int64)
        out[f"labels_{s}"] = np.concatenate(labels[s]).astype(np.int64)
    _check_cells(out, activities, emotions, actors, recordings, cfg)
    sk = ref
    out.update(feature_min=lo, feature_max=hi, window=np.int64(window), frame_rate=np.float64(cfg["frame_rate"]),
               activities=np.array(activities), emotions=np.array(emotions), actors=np.array(actors),
               joint_names=np.array(sk.names), parents=sk.parents.astype(np.int64), offsets=sk.offsets,
               rotation_orders=np.array(sk.rotation_orders()), skipped=np.array(skipped, dtype=str),
               vertical_position=np.bool_(cfg.get("vertical_position", False)))
    return out


def _check_cells(out: dict, activities, emotions, actors, recordings, cfg) -> None:
    present = {(r.activity, r.emotion, r.actor) for r in recordings}
    for s in SPLITS:
        have = {tuple(x) for x in out[f"labels_{s}"].tolist()}
        for act, emo, actor in sorted(present):
            key = (activities.index(act), emotions.index(emo), actors.index(actor))
            if key not in have:
                raise DataError(f"({act}, {emo}, {actor}) has no window of {cfg['window']} frames in the {s} split: "
                                f"its recordings are too short; lower datasets.{cfg['name']}.window or stride, or "
                                f"drop the cell's files from {MANIFEST}.")


def write_processed(out: dict, cfg: dict, profile: str) -> Path:
    path = Path(paths.processed_dir(profile, cfg["name"])) / PROCESSED
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **out)
    counts = ", ".join(f"{s} {len(out[f'starts_{s}'])}" for s in SPLITS)
    print(f"wrote {path}: windows {counts}; {len(out['skipped'])} recording(s) shorter than a window skipped")
    return path


# ----------------------------------------------------------------------------------------------- synthetic
# An Xsens-MVN-like skeleton: (name, parent, offset in cm). 23 joints.
XSENS_LIKE = [
    ("Hips", -1, (0, 95, 0)), ("Chest", 0, (0, 10, 0)), ("Chest2", 1, (0, 10, 0)), ("Chest3", 2, (0, 10, 0)),
    ("Chest4", 3, (0, 10, 0)), ("Neck", 4, (0, 12, 0)), ("Head", 5, (0, 10, 0)),
    ("RightCollar", 4, (-3, 8, 0)), ("RightShoulder", 7, (-15, 0, 0)), ("RightElbow", 8, (-28, 0, 0)),
    ("RightWrist", 9, (-25, 0, 0)), ("LeftCollar", 4, (3, 8, 0)), ("LeftShoulder", 11, (15, 0, 0)),
    ("LeftElbow", 12, (28, 0, 0)), ("LeftWrist", 13, (25, 0, 0)), ("RightHip", 0, (-9, 0, 0)),
    ("RightKnee", 15, (0, -43, 0)), ("RightAnkle", 16, (0, -42, 0)), ("RightToe", 17, (0, -7, 14)),
    ("LeftHip", 0, (9, 0, 0)), ("LeftKnee", 19, (0, -43, 0)), ("LeftAnkle", 20, (0, -42, 0)),
    ("LeftToe", 21, (0, -7, 14)),
]
SPINE = [1, 2, 3, 4]
LIMBS = {"walk": [8, 9, 12, 13, 15, 16, 19, 20], "knock": [8, 9, 10], "lift": [1, 2, 8, 9, 12, 13, 15, 16, 19, 20],
         "throw": [1, 8, 9, 10, 12]}
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
# emotion -> (amplitude, tempo, spine flexion in degrees, jerkiness in degrees)
EMOTION_STYLE = {"neutral": (1.0, 1.0, 0.0, 0.5), "joy": (1.4, 1.3, -8.0, 1.0), "sadness": (0.6, 0.7, 15.0, 0.3),
                 "anger": (1.3, 1.5, 5.0, 4.0), "fear": (0.8, 1.2, 10.0, 3.0), "pride": (1.1, 0.9, -12.0, 0.5),
                 "shame": (0.7, 0.8, 20.0, 0.8), "anxiety": (0.9, 1.1, 6.0, 2.5)}


def _activity_pattern(activity: str, n_joints: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-joint sine amplitudes and phases [J, 3] and the base frequency (Hz) of an activity."""
    seed = sum(ord(c) for c in activity)
    rng = np.random.default_rng(seed)
    amp = np.zeros((n_joints, 3))
    limbs = LIMBS.get(activity) or list(rng.choice(np.arange(1, n_joints), size=6, replace=False))
    amp[limbs] = rng.uniform(10, 40, size=(len(limbs), 3)) * (rng.random((len(limbs), 3)) < 0.6)
    return amp, rng.uniform(0, 2 * np.pi, size=(n_joints, 3)), float(rng.uniform(0.6, 1.4))


def synthetic_motion(activity: str, emotion: str, actor: int, n_frames: int, frame_rate: float,
                     rng: np.random.Generator) -> Motion:
    names = [j[0] for j in XSENS_LIKE]
    parents = np.array([j[1] for j in XSENS_LIKE])
    limb = 1.0 + 0.08 * (actor - 1)                   # actors differ by limb length and small offsets
    offsets = np.array([j[2] for j in XSENS_LIKE], dtype=np.float64) * limb
    offsets += np.random.default_rng(100 + actor).normal(0, 0.5, offsets.shape) * (offsets != 0)
    amp_e, tempo, flex, jerk = EMOTION_STYLE.get(emotion, (1.0, 1.0, 0.0, 1.0))
    amp, phase, freq = _activity_pattern(activity, len(names))
    t = np.arange(n_frames) / frame_rate
    angles = amp_e * amp[None] * np.sin(2 * np.pi * freq * tempo * t[:, None, None] + phase[None]
                                        + rng.uniform(0, 2 * np.pi))
    angles[:, SPINE, 1] += flex
    angles += jerk * rng.standard_normal(angles.shape)
    angles[:, 0, 2] += np.linspace(0, rng.uniform(-60, 60), n_frames)     # the root slowly turns (yaw: Y)
    root_pos = np.stack([np.linspace(0, 100 * tempo, n_frames), 95 * limb + 2 * np.sin(4 * np.pi * freq * t),
                         np.zeros(n_frames)], axis=1)
    values = np.concatenate([root_pos, angles.reshape(n_frames, -1)], axis=1)
    channels = [ROOT_CHANNELS] + [JOINT_CHANNELS] * (len(names) - 1)
    end_sites = {j: np.array([0.0, 5.0, 0.0]) for j in (6, 10, 14, 18, 22)}
    return Motion(Skeleton(names, parents, offsets, channels, end_sites), 1.0 / frame_rate, values)


def write_synthetic_emilya(folder: str | os.PathLike, *, activities: list[str], emotions: list[str], actors: int,
                           frames: int, frame_rate: float, seed: int = 0) -> Path:
    """One BVH per (activity, emotion, actor) cell and its manifest.csv, in the layout the import expects."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for act in activities:
        for emo in emotions:
            for actor in range(1, actors + 1):
                name = f"bvh/actor{actor}_{act}_{emo}.bvh"
                write_bvh(folder / name, synthetic_motion(act, emo, actor, frames, frame_rate, rng))
                rows.append({"file": name, "actor": f"actor{actor}", "activity": act, "emotion": emo})
    with atomic_path(folder / MANIFEST) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return folder


def preprocess(cfg: dict, profile: str) -> None:
    """``python -m stages.preprocess --dataset emilya``: source import (the user's copy) or synthetic."""
    if cfg["source"] == "import":
        recordings = read_manifest(paths.raw_dir(cfg["name"]), cfg["activities"], cfg["emotions"])
        write_processed(build_windows(recordings, cfg), cfg, profile)
    elif cfg["source"] == "synthetic":
        syn = cfg["synthetic"]
        with tempfile.TemporaryDirectory() as raw:
            write_synthetic_emilya(raw, activities=cfg["activities"], emotions=cfg["emotions"], actors=syn["actors"],
                                   frames=syn["frames"], frame_rate=cfg["frame_rate"], seed=syn["seed"])
            recordings = read_manifest(raw, cfg["activities"], cfg["emotions"])
            write_processed(build_windows(recordings, cfg), cfg, profile)
    else:
        raise ConfigError(f"datasets.{cfg['name']}.source must be 'import' or 'synthetic', not {cfg['source']!r}.")
