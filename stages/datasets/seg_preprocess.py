"""Preprocess the chapter-5 segmentation datasets once into data/processed/<profile>/<name>/segmentation.npz.

- cmnist2: colored-2-MNIST scenes from the processed MNIST digits (fixed sets, see cmnist.py).
- flowers, lfw, cub: `source: official` reads the archives in data/raw/<name>/; `source: synthetic`
  first writes small synthetic archives in the same layout into a temporary folder and then runs the
  very same ingestion code on them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from stages import paths
from stages.datasets import cmnist, cub, flowers, lfw, synthetic_sources
from stages.datasets.segmentation import load_processed, save_processed
from stages.errors import ConfigError
from stages.datasets.arrays import load_npz

LOADERS = {"flowers": flowers.load, "lfw": lfw.load, "cub": cub.load}


def preprocess_cmnist2(cfg: dict, profile: str) -> str:
    digits = load_npz(paths.processed_files(profile, cfg["digits_from"])[0],
                      ["train", "train_labels", "test", "test_labels"])
    size, seed = cfg["image_size"], cfg["seed"]
    arrays = {}
    for i, (split, src) in enumerate([("train", "train"), ("val", "test"), ("test", "test")]):
        imgs, masks = cmnist.make_scenes(digits[src], digits[f"{src}_labels"], cfg[f"n_{split}"], size, seed + i)
        arrays[f"{split}_images"], arrays[f"{split}_masks"] = imgs, masks
    out = paths.processed_files(profile, "cmnist2")[0]
    save_processed(out, arrays, True)
    print(f"wrote {out}: " + ", ".join(f"{s} {len(arrays[f'{s}_images'])}" for s in ("train", "val", "test")))
    return out


def preprocess_real(cfg: dict, profile: str) -> str:
    """Flowers, LFW or CUB (``cfg["name"]``): official archives, or synthetic ones in the same layout."""
    name, size = cfg["name"], cfg["image_size"]
    if cfg["source"] == "official":
        arrays, has = LOADERS[name](paths.raw_dir(name), size)
    elif cfg["source"] == "synthetic":
        with tempfile.TemporaryDirectory(prefix=f"synthetic-{name}-") as tmp:
            synthetic_sources.WRITERS[name](Path(tmp), cfg["synthetic_count"], seed=cfg.get("synthetic_seed", 0))
            arrays, has = LOADERS[name](tmp, size, verify=False)
    else:
        raise ConfigError(f"datasets.{name}.source must be 'official' or 'synthetic', not {cfg['source']!r}")
    out = paths.processed_files(profile, name)[0]
    save_processed(out, arrays, has)
    print(f"wrote {out} ({cfg['source']}): " + ", ".join(
        f"{s} {len(arrays[f'{s}_images'])}" for s in ("train", "val", "test")))
    return out


__all__ = ["preprocess_cmnist2", "preprocess_real", "load_processed"]
