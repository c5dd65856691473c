"""The processed layout every multi-view dataset of chapter 4.2 writes, and the one writer.

``views.npz``: ``<split>_images`` uint8 [M, 3, S, S] and ``<split>_content`` int64 [M] (the content id
each image shows: a digit instance, a chair, a clothing item, a flower class), splits ``train`` and ``test``.
Two images with one content id are two views of that content (GMV's only supervision).
"""
from __future__ import annotations

import numpy as np

from stages import paths
from stages.errors import atomic_path

SPLITS = ("train", "test")
KEYS = [f"{s}_{k}" for s in SPLITS for k in ("images", "content")]


def write_views(profile: str, dataset: str, arrays: dict[str, np.ndarray], source: str) -> str:
    out = paths.processed_files(profile, dataset)[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    sizes = ", ".join(f"{len(arrays[s + '_images'])} {s} images of {len(np.unique(arrays[s + '_content']))} contents"
                      for s in SPLITS)
    print(f"wrote {out}: {sizes} ({source})")
    return out
