"""Bandai-Namco-Research-Motiondataset-1: real, public motion capture with styles (beyond the thesis).

The GitHub repository BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset (CC BY-NC-ND 4.0) holds
175 BVH files (30 fps, 22 joints), each with a JSON ``{"content": i, "style": j}``. ``download`` fetches them
one by one at a pinned commit from raw.githubusercontent.com (``WEAKGEN_BANDAI_URL`` points elsewhere, e.g.
a mirror or a test folder), each checked against ``bandai1_sha256.txt`` (SHA-256 of 174 BVH files and the
175 JSON files at that commit; ``dataset-1_dance-long_normal_001.bvh`` has no recorded digest and is
checked by parsing it). Files already present are verified and kept, a cut download resumes from its
``.part`` (stages/datasets/fetch.py), and ``manifest.csv`` (styles as "emotion", contents as "activity")
is written last, so its presence means the folder is complete. Preprocessing is Emilya's
(stages/datasets/emilya.py).
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from stages import paths
from stages.datasets.bvh import read_bvh
from stages.datasets.emilya import COLUMNS, MANIFEST, build_windows, read_manifest, write_processed
from stages.datasets.fetch import download as fetch
from stages.errors import ConfigError, DataError, atomic_path

COMMIT = "74ead3ba1ae4696404e6086233779f60de8bf9ef"
URL = ("https://raw.githubusercontent.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset/{commit}/"
       "dataset/Bandai-Namco-Research-Motiondataset-1/data/")
URL_ENV = "WEAKGEN_BANDAI_URL"
CHECKSUMS = Path(__file__).with_name("bandai1_sha256.txt")
UNCHECKED = ("dataset-1_dance-long_normal_001.bvh",)
# cfg/content_label.txt and cfg/style_label.txt at the pinned commit, in index order.
CONTENTS = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye", "respond",
            "call", "punch", "kick", "slash", "dance-long", "dance-short"]
STYLES = ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine", "childish", "old",
          "tired", "active", "musical", "giant", "chimpira"]


def checksums(path: Path | None = None) -> dict[str, str]:
    out = {}
    for line in (path or CHECKSUMS).read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            out[name] = digest
    return out


def _labels(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text())
        return CONTENTS[data["content"]], STYLES[data["style"]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise DataError(f"{path}: not a label file {{\"content\": i, \"style\": j}} ({exc}); delete it and rerun "
                        f"the download.") from exc


def download(raw_dir: str | os.PathLike, *, max_files: int | None = None, progress: bool = True) -> Path:
    """Fetch every listed file (or the first ``max_files`` recordings) into ``raw_dir``; write manifest.csv."""
    raw_dir = Path(raw_dir)
    base = os.environ.get(URL_ENV) or URL.format(commit=COMMIT)
    base = base if base.endswith("/") else base + "/"
    sums = checksums()
    recordings = sorted({n[:-5] for n in sums if n.endswith(".json")})[:max_files]
    rows = []
    for stem in recordings:
        for name in (f"{stem}.json", f"{stem}.bvh"):
            fetch(base + name, raw_dir / "data" / name, sha256=sums.get(name), progress=progress)
        if f"{stem}.bvh" in UNCHECKED:
            read_bvh(raw_dir / "data" / f"{stem}.bvh")      # no digest: at least a well-formed BVH
        content, style = _labels(raw_dir / "data" / f"{stem}.json")
        if f"_{content}_{style}_" not in stem:
            raise DataError(f"{raw_dir / 'data' / stem}.json says ({content}, {style}), its name disagrees: the "
                            f"mirror serves another release; use commit {COMMIT}.")
        rows.append({"file": f"data/{stem}.bvh", "actor": "actor1", "activity": content, "emotion": style})
    with atomic_path(raw_dir / MANIFEST) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{raw_dir}: {len(rows)} recordings verified; wrote {raw_dir / MANIFEST}")
    return raw_dir / MANIFEST


def preprocess(cfg: dict, profile: str) -> None:
    if cfg["source"] != "official":
        raise ConfigError(f"datasets.{cfg['name']}.source must be 'official' (the public files), not {cfg['source']!r}.")
    recordings = read_manifest(paths.raw_dir(cfg["name"]), cfg["activities"], cfg["emotions"])
    write_processed(build_windows(recordings, cfg), cfg, profile)
