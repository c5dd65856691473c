"""The preprocess shared by the natural-video datasets (KTH, Human3.6M, BAIR; each module calls it).

``source`` (params.yaml ``datasets.<name>``):
- ``synthetic`` (smoke, ci): small files in the dataset's exact raw format are written to a temporary
  folder and ingested by the same code as the real data;
- ``official`` (KTH, BAIR) / ``import`` (Human3.6M, licence-gated): the raw files in data/raw/<name>/.
All three processed files are built in memory and only then written (atomically), so a failure on any
input leaves no processed file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from stages import paths
from stages.errors import ConfigError, DataError, atomic_path
from stages.registry import config_digest


RUN_KEY = "preprocess_run"


def check_same_run(files: list[str], dataset: str) -> None:
    """DataError unless ``files`` were written by one preprocess run (a kill between the renames of a rerun
    after a config change can leave a new val.npz beside an old train.npz)."""
    runs = {}
    for f in files:
        with np.load(f) as data:
            runs[f] = str(data[RUN_KEY]) if RUN_KEY in data.files else None
    if len(set(runs.values())) > 1:
        raise DataError(f"{', '.join(files)} come from different preprocess runs (one was interrupted between its "
                        f"renames): rerun `python -m stages.preprocess --dataset {dataset}` (or the orchestrator).")


def preprocess_natural(cfg: dict, profile: str, build: Callable[[str, dict], dict],
                       write_synthetic: Callable[[Path, dict], None]) -> list[str]:
    """Build test.npz, train.npz, val.npz of dataset ``cfg["name"]`` under data/processed/<profile>/<name>/.

    ``build(raw_dir, cfg)`` reads the raw files into the three splits; ``write_synthetic(folder, synthetic_cfg)``
    writes the look-alike raw files that smoke and ci ingest."""
    name = cfg["name"]
    source = cfg["source"]
    if source == "synthetic":
        synth = dict(cfg["synthetic"])
        build_cfg = {**cfg, **{k: synth[k] for k in ("train_persons", "test_persons", "train_subjects",
                                                      "test_subjects") if k in synth}}
        with tempfile.TemporaryDirectory(prefix=f"weakgen-{name}-") as tmp:
            write_synthetic(Path(tmp), synth)
            splits = build(tmp, build_cfg)
    elif source in ("official", "import"):
        splits = build(paths.raw_dir(name), cfg)
    else:
        raise ConfigError(f"datasets.{name}.source must be synthetic, official or import, not {source!r}")
    outs = paths.processed_files(profile, name)
    # All three files are written under temporary names and renamed only once every write succeeded; a kill
    # between two renames can still mix runs, so each file carries its run's stamp (check_same_run).
    stamp = np.array(f"{config_digest(cfg)}-{os.getpid()}-{time.time_ns()}")
    with contextlib.ExitStack() as stack:
        for out in outs:
            tmp = stack.enter_context(atomic_path(out))
            with open(tmp, "wb") as fh:
                np.savez(fh, **splits[Path(out).stem], **{RUN_KEY: stamp})
    test = splits["test"]["videos"]
    print(f"wrote {', '.join(outs)}: {test.shape[0]} test clips of {test.shape[1]} frames "
          f"{test.shape[2:]}, {len(splits['train']['offsets']) - 1} train / {len(splits['val']['offsets']) - 1} val videos "
          f"({source})")
    return outs
