"""KTH human actions (SRVP protocol, anchors §1.2): six official zips -> 64x64 grey clips at 25 fps.

Raw layout (what the zips extract to, and what the synthetic source writes):
    data/raw/kth/<action>/person<PP>_<action>_d<S>_uncomp.avi      (160x120, 25 fps)

Protocol: each video is decoded at 25 fps and scaled to 64x64 without crop (``ffmpeg -r 25 -s 64x64``:
swscale's default bicubic filter), grey; persons 1-20 train (a fixed 5% of those videos held out for
validation), 21-25 test; the fixed test set is 1,000 clips of 40 frames drawn with seed 42 (random
action, test person, scenario d1-d4 and start), 10 conditioning frames + 30 predicted.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages.datasets.fetch import download, safe_extract
from stages.datasets.natural import preprocess_natural
from stages.datasets.videos import decode_video, pack_videos, validation_split, write_video
from stages.errors import DataError

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
SCENARIOS = (1, 2, 3, 4)
TRAIN_PERSONS = tuple(range(1, 21))
TEST_PERSONS = tuple(range(21, 26))
URL = "http://www.nada.kth.se/cvap/actions/{action}.zip"
# The KTH site publishes no checksums and none was recorded by the SRVP/SVG scripts: the zips are checked
# by extraction instead (a truncated or corrupt zip fails safe_extract with the file named) and every .avi
# by decoding it completely (decode_video compares the decoded frame count with the header's).
SHA256: dict[str, str | None] = {a: None for a in ACTIONS}
NAME = re.compile(r"^person(\d\d)_([a-z]+)_d(\d)_uncomp\.avi$")


def parse_name(name: str) -> tuple[int, str, int]:
    """'person21_walking_d3_uncomp.avi' -> (21, 'walking', 3)."""
    m = NAME.match(name)
    if not m or m.group(2) not in ACTIONS:
        raise DataError(f"{name}: not a KTH video name (expected person<PP>_<action>_d<S>_uncomp.avi).")
    return int(m.group(1)), m.group(2), int(m.group(3))


def download_kth(raw_dir: str | Path, *, url: str = URL, progress: bool = True) -> Path:
    """Fetch (resumably) and safely extract the six zips into ``raw_dir/<action>/``."""
    raw_dir = Path(raw_dir)
    for action in ACTIONS:  # zips are kept (the download stage's outputs); a present one is not fetched again
        archive = download(url.format(action=action), raw_dir / "zips" / f"{action}.zip",
                           sha256=SHA256[action], progress=progress)
        if not (raw_dir / action).is_dir():
            safe_extract(archive, raw_dir / action)
    return raw_dir


def list_videos(raw_dir: str | Path) -> dict[tuple[int, str, int], Path]:
    """(person, action, scenario) -> path of every KTH video found under ``raw_dir/<action>/``."""
    raw_dir = Path(raw_dir)
    missing = [a for a in ACTIONS if not (raw_dir / a).is_dir()]
    if missing:
        raise DataError(f"{raw_dir}: action folder(s) {missing} missing; run `python -m stages.download --dataset kth "
                        "--profile paper` (or unzip the official <action>.zip files there).")
    found = {}
    for action in ACTIONS:
        for path in sorted((raw_dir / action).rglob("*.avi")):
            person, act, scen = parse_name(path.name)
            found[(person, act, scen)] = path
    return found


def decode_kth(path: str | Path, size: int = 64) -> np.ndarray:
    """uint8 [T, 1, size, size]: 25 fps, squashed to size x size with swscale bicubic (no crop), grey."""
    frames = [f.reformat(width=size, height=size, format="gray", interpolation="BICUBIC").to_ndarray()
              for f in decode_video(path, fps=25)]
    return np.stack(frames)[:, None]


def draw_test_clips(videos: dict, lengths: dict, n_clips: int, n_frames: int, seed: int,
                    persons=TEST_PERSONS) -> list[tuple[tuple[int, str, int], int]]:
    """The fixed test set: (video key, start) pairs drawn with RandomState(seed) (SRVP make_test_set.py)."""
    rng = np.random.RandomState(seed)
    clips = []
    usable = [k for k in videos if k[0] in persons and lengths[k] >= n_frames]
    if not usable:
        raise DataError(f"no test video (persons {persons[0]}-{persons[-1]}) has {n_frames} frames.")
    while len(clips) < n_clips:
        key = (int(rng.choice(persons)), str(rng.choice(ACTIONS)), int(rng.choice(SCENARIOS)))
        if key not in videos or lengths[key] < n_frames:  # e.g. person13_handclapping_d3 does not exist
            continue
        clips.append((key, int(rng.randint(lengths[key] - n_frames + 1))))
    return clips


def build_kth(raw_dir: str | Path, cfg: dict) -> dict[str, dict[str, np.ndarray]]:
    """Decode every video once and return the arrays of test.npz, train.npz and val.npz."""
    size = cfg["frame_size"]
    videos = list_videos(raw_dir)
    train_persons = set(cfg.get("train_persons") or TRAIN_PERSONS)
    test_persons = tuple(cfg.get("test_persons") or TEST_PERSONS)
    train_keys = sorted(k for k in videos if k[0] in train_persons)
    test_keys = sorted(k for k in videos if k[0] in test_persons)
    if not train_keys or not test_keys:
        raise DataError(f"{raw_dir}: no {'training' if not train_keys else 'test'} video found.")
    decoded = {}
    for key in tqdm(train_keys + test_keys, desc="decode KTH", unit="video", mininterval=1.0):
        decoded[key] = decode_kth(videos[key], size)
    lengths = {k: len(v) for k, v in decoded.items()}
    clips = draw_test_clips({k: videos[k] for k in test_keys}, lengths, cfg["test_clips"], cfg["test_frames"],
                            cfg["test_seed"], persons=test_persons)
    test = np.stack([decoded[k][s:s + cfg["test_frames"]] for k, s in clips])
    val_idx = set(validation_split(len(train_keys), cfg["val_fraction"], cfg["val_seed"]).tolist())
    splits = {}
    for split, keys in (("train", [k for i, k in enumerate(train_keys) if i not in val_idx]),
                        ("val", [k for i, k in enumerate(train_keys) if i in val_idx])):
        frames, offsets = pack_videos([decoded[k] for k in keys])
        splits[split] = {"frames": frames, "offsets": offsets, "names": np.array([videos[k].name for k in keys])}
    splits["test"] = {"videos": test, "persons": np.array([k[0] for k, _ in clips]),
                      "actions": np.array([k[1] for k, _ in clips]), "starts": np.array([s for _, s in clips])}
    return splits


def write_synthetic_kth(raw_dir: str | Path, persons, *, actions=ACTIONS, scenarios=(1,), n_frames: int = 50,
                        seed: int = 0) -> list[Path]:
    """Small KTH-format source: 160x120 grey MPEG-4 .avi at 25 fps named like KTH's, one folder per action.

    Each video shows a dark figure crossing a textured background at an action-dependent speed (walking is
    slow, running fast, the "hand" actions oscillate in place), so the models have motion to learn.
    """
    raw_dir = Path(raw_dir)
    rng = np.random.default_rng(seed)
    speed = {"walking": 1.5, "jogging": 3.0, "running": 4.5, "boxing": 0.0, "handclapping": 0.0, "handwaving": 0.0}
    yy, xx = np.mgrid[0:120, 0:160]
    written = []
    for person in persons:
        for a, action in enumerate(actions):
            for scen in scenarios:
                bg = (110 + 40 * np.sin(xx / (9 + scen) + person) * np.cos(yy / 13.0)).astype(np.float32)
                x0, direction = rng.uniform(20, 140), rng.choice([-1, 1])
                frames = np.empty((n_frames, 120, 160), np.uint8)
                for t in range(n_frames):
                    cx = (x0 + direction * speed[action] * t) % 160
                    arm = 8 * np.sin(t * (0.6 + 0.2 * a)) if speed[action] == 0 else 0
                    body = (np.abs(xx - cx) < 7) & (np.abs(yy - 70) < 28)
                    hands = (np.abs(xx - cx - 10) < 4) & (np.abs(yy - 55 - arm) < 4)
                    frames[t] = np.where(body | hands, 30 + 5 * person % 40, bg).clip(0, 255)
                path = raw_dir / action / f"person{person:02d}_{action}_d{scen}_uncomp.avi"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, frames, fps=25)
                written.append(path)
    return written


def preprocess(cfg: dict, profile: str) -> list[str]:
    def synthetic(raw: Path, s: dict) -> None:
        write_synthetic_kth(raw, list(s["train_persons"]) + list(s["test_persons"]), scenarios=s.get("scenarios", [1]),
                            n_frames=s["n_frames"], seed=s["seed"])
    return preprocess_natural(cfg, profile, build_kth, synthetic)
