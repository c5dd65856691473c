"""Parzen-window log-likelihood (Breuleux et al. 2011; the protocol of Goodfellow et al. 2014), Table 4.1.

A Gaussian kernel of width sigma on each of n generated samples mu_i gives, for a test point x in R^d,

    log p(x) = logmeanexp_i( -||x - mu_i||^2 / (2 sigma^2) ) - d/2 log(2 pi sigma^2).

Squared distances come from one float32 matrix product per block (the points are centred on the test
mean first, which keeps ||x||^2 + ||mu||^2 - 2 x.mu accurate); the log-mean-exp runs in float64, a running
(max, sum) per test point and sigma updated block after block of generated samples. The generated samples
may arrive as an iterator of batches (e.g. straight from the model): they are never all in memory, so a
paper-size run (10,000 x 10,000 windows of 13,800 values) holds the test windows (0.55 GB) and a few blocks.
Every sigma of a grid is scored from the same distances: choosing sigma on validation windows costs one pass.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _flat(a) -> torch.Tensor:
    t = torch.as_tensor(a)
    return t.reshape(len(t), -1)


def centre_of(points: torch.Tensor, block: int) -> torch.Tensor:
    """Mean row, accumulated in float64 block by block (no float64 copy of the whole set)."""
    total = torch.zeros(points.shape[1], dtype=torch.float64, device=points.device)
    rows = max(1, min(block, 2 ** 21 // max(points.shape[1], 1)))   # float64 temporaries of <= 16 MB
    for a in range(0, len(points), rows):
        total += points[a:a + rows].sum(0, dtype=torch.float64)
    return (total / len(points)).to(points.dtype)


def centred_blocks(points: torch.Tensor, centre: torch.Tensor, block: int, device):
    """Yield (block - centre, its squared row norms): one block is copied at a time (recentring a block
    costs a 1/block-th of its distance products)."""
    for a in range(0, len(points), block):
        b = points[a:a + block].to(device, torch.float32) - centre
        yield b, row_norms_sq(b)


def row_norms_sq(b: torch.Tensor) -> torch.Tensor:
    """||row||^2 of each row, without a temporary the size of ``b``."""
    return torch.einsum("ij,ij->i", b, b)


def squared_distances(xb: torch.Tensor, xb_sq: torch.Tensor, mb: torch.Tensor, mb_sq: torch.Tensor) -> torch.Tensor:
    """||x - mu||^2 for every pair of two blocks: one float32 matrix product, clamped at 0."""
    return torch.addmm(xb_sq[:, None] + mb_sq[None], xb, mb.T, alpha=-2.0).clamp_min_(0)


def sample_blocks(samples, block: int):
    """Blocks of ``block`` rows from a tensor/array of samples or from an iterable of batches of any size."""
    if isinstance(samples, (torch.Tensor, np.ndarray)):
        flat = _flat(samples)
        yield from (flat[a:a + block] for a in range(0, len(flat), block))
        return
    pending, count = [], 0
    for batch in samples:
        pending.append(_flat(batch))
        count += len(pending[-1])
        while count >= block:
            joined = torch.cat(pending) if len(pending) > 1 else pending[0]
            yield joined[:block]
            pending, count = [joined[block:]], count - block
    if count:
        yield torch.cat(pending)


@torch.no_grad()
def parzen_log_likelihood(test, samples, sigmas, *, block: int = 512, device="cpu") -> np.ndarray:
    """[len(sigmas)] mean log p(x) over the test points for each sigma (float64 accumulation).

    ``samples``: a tensor/array [n, ...] or an iterable of such batches (streamed: one block in memory)."""
    x = _flat(test)
    sig = torch.as_tensor(np.atleast_1d(np.asarray(sigmas, dtype=np.float64)), device=device)
    centre = centre_of(x, block).to(device, torch.float32)
    coef = -0.5 / sig.pow(2)                                          # [S]
    run_max = torch.full((len(sig), len(x)), -math.inf, dtype=torch.float64, device=device)
    run_sum = torch.zeros((len(sig), len(x)), dtype=torch.float64, device=device)
    n = 0
    for mb in sample_blocks(samples, block):
        if mb.shape[1] != x.shape[1]:
            raise ValueError(f"samples have {mb.shape[1]} values each, test points {x.shape[1]}")
        n += len(mb)
        mb = mb.to(device, torch.float32) - centre
        mb_sq = row_norms_sq(mb)
        for a, (xb, xb_sq) in zip(range(0, len(x), block), centred_blocks(x, centre, block, device)):
            d2 = squared_distances(xb, xb_sq, mb, mb_sq).double()                     # [bx, bm]
            for s in range(len(sig)):     # one sigma at a time: memory stays at one [bx, bm] block
                e = coef[s] * d2
                m = torch.maximum(run_max[s, a:a + len(xb)], e.amax(1))
                run_sum[s, a:a + len(xb)] = (run_sum[s, a:a + len(xb)] * (run_max[s, a:a + len(xb)] - m).exp()
                                             + (e - m[:, None]).exp_().sum(1))
                run_max[s, a:a + len(xb)] = m
    if n == 0:
        raise ValueError("parzen_log_likelihood needs at least one generated sample")
    total = (run_max + run_sum.log()).sum(1)
    log_norm = math.log(n) + 0.5 * x.shape[1] * torch.log(2 * math.pi * sig.pow(2))
    return (total / len(x) - log_norm).cpu().numpy()


def sigma_grid(low: float = 0.01, high: float = 1.0, count: int = 20) -> np.ndarray:
    return np.logspace(math.log10(low), math.log10(high), count)


def choose_sigma(val, samples, grid, *, block: int = 512, device="cpu") -> tuple[float, np.ndarray]:
    """The grid's sigma that maximises the validation log-likelihood, and every sigma's score."""
    scores = parzen_log_likelihood(val, samples, grid, block=block, device=device)
    return float(np.asarray(grid)[int(np.argmax(scores))]), scores
