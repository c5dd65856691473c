"""Preprocess and download entry points of the natural-video datasets (KTH, Human3.6M, BAIR).

``source`` (params.yaml ``datasets.<name>``):
- ``synthetic`` (smoke, ci): small files in the dataset's exact raw format are written to a temporary
  folder and ingested by the same code as the real data;
- ``official`` (KTH, BAIR) / ``import`` (Human3.6M, licence-gated): the raw files in data/raw/<name>/.
All three processed files are built in memory and only then written (atomically), so a failure on any
input leaves no processed file behind.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import contextlib
import importlib

import numpy as np

from stages import paths
from stages.errors import ConfigError, atomic_path


def _module(name: str):
    """The dataset's own module, imported alone (each preprocess stage depends only on its dataset's code)."""
    return importlib.import_module(f"stages.datasets.{name}")


def write_synthetic(name: str, raw_dir: Path, synth: dict) -> None:
    kth = h36m = bair = _module(name)
    if name == "kth":
        kth.write_synthetic_kth(raw_dir, list(synth["train_persons"]) + list(synth["test_persons"]),
                                scenarios=synth.get("scenarios", [1]), n_frames=synth["n_frames"], seed=synth["seed"])
    elif name == "h36m":
        h36m.write_synthetic_h36m(raw_dir, list(synth["train_subjects"]) + list(synth["test_subjects"]),
                                  videos_per_subject=synth["videos_per_subject"], n_frames=synth["n_frames"],
                                  size=synth["size"], seed=synth["seed"])
    elif name == "bair":
        bair.write_synthetic_bair(raw_dir, synth["n_train"], synth["n_test"], seed=synth["seed"])


def preprocess_natural(name: str, cfg: dict, profile: str) -> list[str]:
    """Build test.npz, train.npz, val.npz of ``name`` under data/processed/<profile>/<name>/."""
    source = cfg["source"]
    if source == "synthetic":
        synth = dict(cfg["synthetic"])
        build_cfg = {**cfg, **{k: synth[k] for k in ("train_persons", "test_persons", "train_subjects",
                                                      "test_subjects") if k in synth}}
        with tempfile.TemporaryDirectory(prefix=f"weakgen-{name}-") as tmp:
            write_synthetic(name, Path(tmp), synth)
            splits = getattr(_module(name), f"build_{name}")(tmp, build_cfg)
    elif source in ("official", "import"):
        splits = getattr(_module(name), f"build_{name}")(paths.raw_dir(name), cfg)
    else:
        raise ConfigError(f"datasets.{name}.source must be synthetic, official or import, not {source!r}")
    outs = paths.processed_files(profile, name)
    # All three files are written under temporary names and renamed only once every write succeeded.
    with contextlib.ExitStack() as stack:
        for out in outs:
            tmp = stack.enter_context(atomic_path(out))
            with open(tmp, "wb") as fh:
                np.savez(fh, **splits[Path(out).stem])
    test = splits["test"]["videos"]
    print(f"wrote {', '.join(outs)}: {test.shape[0]} test clips of {test.shape[1]} frames "
          f"{test.shape[2:]}, {len(splits['train']['offsets']) - 1} train / {len(splits['val']['offsets']) - 1} val videos "
          f"({source})")
    return outs


def download_natural(name: str) -> None:
    raw = paths.raw_dir(name)
    kth = h36m = bair = _module(name)
    if name == "kth":
        kth.download_kth(raw)
    elif name == "bair":
        bair.download_bair(raw)
    elif name == "h36m":
        h36m.import_archives(raw)
