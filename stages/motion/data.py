"""Windows of a processed motion dataset (stages/datasets/emilya.py wrote motion.npz): gathered on demand.

Storing every window (78,982 x 200 x 69 floats on Emilya) would take gigabytes; the frames of each split
and the window starts take a few megabytes, and a batch is one fancy-indexing gather.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stages.datasets.emilya import SPLITS
from stages.errors import ConfigError, DataError
from stages.motion.files import processed_file

ACTIVITY, EMOTION, ACTOR = 0, 1, 2


class MotionData:
    def __init__(self, dataset: str, profile: str):
        path = Path(processed_file(profile, dataset))
        if not path.is_file():
            raise DataError(f"{path} is missing: run its preprocess stage (python -m stages.preprocess --dataset "
                            f"{dataset} --profile {profile}).")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:
            raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its preprocess stage.") from exc
        self.path = path
        self.frames = {s: torch.from_numpy(arrays[f"frames_{s}"]) for s in SPLITS}
        self.starts = {s: arrays[f"starts_{s}"] for s in SPLITS}
        self.labels = {s: arrays[f"labels_{s}"] for s in SPLITS}
        self.window = int(arrays["window"])
        self.emotions = [str(e) for e in arrays["emotions"]]
        self.meta = arrays
        self._offsets = torch.arange(self.window)

    @property
    def frame_dim(self) -> int:
        return self.frames["train"].shape[1]

    def count(self, split: str) -> int:
        return len(self.starts[split])

    def windows(self, split: str, index) -> torch.Tensor:
        """[n, T, D] float32 windows ``index`` of ``split``."""
        starts = torch.as_tensor(self.starts[split][np.asarray(index)])
        return self.frames[split][starts[:, None] + self._offsets]

    def emotion(self, split: str, index) -> torch.Tensor:
        return torch.as_tensor(self.labels[split][np.asarray(index), EMOTION])

    def require(self, split: str, n: int, key: str) -> int:
        """``n`` windows of ``split``, or a ConfigError naming the key when the split holds fewer."""
        have = self.count(split)
        if n > have:
            raise ConfigError(f"{key} = {n} but the {split} split of {self.path} holds {have} windows: lower {key}.")
        return n
