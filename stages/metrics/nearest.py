"""G2T / T2G of Table 4.1: mean distance from each generated window to its nearest real one, and back.

Distance between windows x, y of T frames: ||x - y||_2 / sqrt(T) [I] (the plain Euclidean distance over
200 x 69 values would be about 5 where the thesis prints about 0.5). One blocked pass over the distance
matrix yields both the row minima (G2T) and the column minima (T2G); only one block is ever in memory.
"""
from __future__ import annotations

import numpy as np
import torch

from stages.metrics.parzen import centre_of, centred_blocks, squared_distances


@torch.no_grad()
def nearest_distances(generated, real, *, frames: int, block: int = 4096, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """(each generated window's min distance to real, each real window's min distance to generated)."""
    g = torch.as_tensor(generated).reshape(len(generated), -1)
    r = torch.as_tensor(real).reshape(len(real), -1)
    centre = centre_of(r, block).to(device, torch.float32)
    g_min = torch.full((len(g),), float("inf"), device=device)
    r_min = torch.full((len(r),), float("inf"), device=device)
    for a, (gb, gb_sq) in zip(range(0, len(g), block), centred_blocks(g, centre, block, device)):
        for b, (rb, rb_sq) in zip(range(0, len(r), block), centred_blocks(r, centre, block, device)):
            d2 = squared_distances(gb, gb_sq, rb, rb_sq)
            g_min[a:a + block] = torch.minimum(g_min[a:a + block], d2.amin(1))
            r_min[b:b + block] = torch.minimum(r_min[b:b + block], d2.amin(0))
    scale = float(frames) ** 0.5
    return (g_min.sqrt() / scale).cpu().numpy(), (r_min.sqrt() / scale).cpu().numpy()


def g2t_t2g(generated, real, *, frames: int, block: int = 4096, device="cpu") -> tuple[float, float]:
    g_min, r_min = nearest_distances(generated, real, frames=frames, block=block, device=device)
    return float(g_min.mean()), float(r_min.mean())
