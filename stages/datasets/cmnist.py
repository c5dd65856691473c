"""colored-2-MNIST (thesis 5.4, toy set, n = 3 regions): one even and one odd MNIST digit, coloured from
disjoint distributions, pasted at random positions in random paint order on a uniform grey-ish background.

Following the ReDO code at 128x128: digits upscaled to 56x56 (nearest; size * 7/16 at other sizes) and
binarised at 0.5; even digits R in [0, .33], G = B in [0, .33]; odd digits R = B in [.66, 1], G in [.66, 1];
background G = R in [.33, .66], B in [.33, .66]. Ground truth: 0 background, 1 even digit, 2 odd digit
(the later-painted digit wins where they overlap). The ReDO code draws fresh scenes every epoch; here each
split is a fixed set drawn once (train from the train digits, val/test from the test digits).
"""
from __future__ import annotations

import numpy as np


def _resize_nearest(digits: np.ndarray, size: int) -> np.ndarray:
    idx = (np.arange(size) * digits.shape[-1] / size).astype(int)
    return digits[:, idx][:, :, idx]


def make_scenes(digits: np.ndarray, labels: np.ndarray, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes [n, size, size, 3] uint8 and class masks [n, size, size] from 28x28 uint8 digits."""
    rng = np.random.default_rng(seed)
    dsize = max(4, round(size * 56 / 128))
    binary = _resize_nearest(digits, dsize) > 127
    even, odd = np.flatnonzero(labels % 2 == 0), np.flatnonzero(labels % 2 == 1)
    bg = rng.uniform(0.33, 0.66, size=(n, 2))
    images = np.empty((n, size, size, 3), np.float32)
    images[..., 0] = images[..., 1] = bg[:, 0, None, None]
    images[..., 2] = bg[:, 1, None, None]
    masks = np.zeros((n, size, size), np.uint8)
    even_col = rng.uniform(0, 0.33, size=(n, 2))
    odd_col = rng.uniform(0.66, 1, size=(n, 2))
    colours = {1: np.stack([even_col[:, 0], even_col[:, 1], even_col[:, 1]], 1),
               2: np.stack([odd_col[:, 0], odd_col[:, 1], odd_col[:, 0]], 1)}
    picks = {1: rng.choice(even, n), 2: rng.choice(odd, n)}
    pos = rng.integers(0, size - dsize + 1, size=(n, 2, 2))
    first = rng.integers(1, 3, size=n)                    # which class is painted first
    for i in range(n):  # one paste per scene and class; vectorising this buys nothing at dataset-build time
        for cls in (first[i], 3 - first[i]):
            y, x = pos[i, cls - 1]
            shape = binary[picks[cls][i]]
            region = images[i, y:y + dsize, x:x + dsize]
            region[shape] = colours[cls][i]
            masks[i, y:y + dsize, x:x + dsize][shape] = cls
    return (images * 255).round().astype(np.uint8), masks
