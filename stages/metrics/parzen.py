"""Parzen-window log-likelihood (Breuleux et al. 2011; the protocol of Goodfellow et al. 2014), Table 4.1.

A Gaussian kernel of width sigma on each of n generated samples mu_i gives, for a test point x in R^d,

    log p(x) = logmeanexp_i( -||x - mu_i||^2 / (2 sigma^2) ) - d/2 log(2 pi sigma^2).

Squared distances come from one float32 matrix product per block (the points are centred on the test
mean first, which keeps ||x||^2 + ||mu||^2 - 2 x.mu accurate); the log-mean-exp runs in float64 over
blocks of generated samples. Only one block of each set is copied (centred) at a time, so memory beyond
the inputs stays at a few blocks whatever n. Every sigma of a grid is scored
from the same distances: choosing sigma on validation windows costs one pass.
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
    for a in range(0, len(points), block):
        total += points[a:a + block].sum(0, dtype=torch.float64)
    return (total / len(points)).to(points.dtype)


def centred_blocks(points: torch.Tensor, centre: torch.Tensor, block: int, device):
    """Yield (block - centre, its squared row norms): one block is copied at a time (recentring a block
    costs a 1/block-th of its distance products)."""
    for a in range(0, len(points), block):
        b = points[a:a + block].to(device, torch.float32) - centre
        yield b, b.pow(2).sum(1)


def squared_distances(xb: torch.Tensor, xb_sq: torch.Tensor, mb: torch.Tensor, mb_sq: torch.Tensor) -> torch.Tensor:
    """||x - mu||^2 for every pair of two blocks: one float32 matrix product, clamped at 0."""
    return torch.addmm(xb_sq[:, None] + mb_sq[None], xb, mb.T, alpha=-2.0).clamp_min_(0)


@torch.no_grad()
def parzen_log_likelihood(test, samples, sigmas, *, block: int = 2048, device="cpu") -> np.ndarray:
    """[len(sigmas)] mean log p(x) over the test points for each sigma (float64 accumulation)."""
    x, mu = _flat(test), _flat(samples)
    sig = torch.as_tensor(np.atleast_1d(np.asarray(sigmas, dtype=np.float64)), device=device)
    centre = centre_of(x, block).to(device, torch.float32)
    n, d = len(mu), x.shape[1]
    coef = -0.5 / sig.pow(2)                                          # [S]
    total = torch.zeros(len(sig), dtype=torch.float64, device=device)
    for xb, xb_sq in centred_blocks(x, centre, block, device):
        run_max = torch.full((len(sig), len(xb)), -math.inf, dtype=torch.float64, device=device)
        run_sum = torch.zeros((len(sig), len(xb)), dtype=torch.float64, device=device)
        for mb, mb_sq in centred_blocks(mu, centre, block, device):
            e = coef[:, None, None] * squared_distances(xb, xb_sq, mb, mb_sq).double()[None]   # [S, bx, bm]
            m = torch.maximum(run_max, e.amax(2))
            run_sum = run_sum * (run_max - m).exp() + (e - m[..., None]).exp().sum(2)
            run_max = m
        total += (run_max + run_sum.log()).sum(1)
    log_norm = math.log(n) + 0.5 * d * torch.log(2 * math.pi * sig.pow(2))
    return (total / len(x) - log_norm).cpu().numpy()


def sigma_grid(low: float = 0.01, high: float = 1.0, count: int = 20) -> np.ndarray:
    return np.logspace(math.log10(low), math.log10(high), count)


def choose_sigma(val, samples, grid, *, block: int = 2048, device="cpu") -> tuple[float, np.ndarray]:
    """The grid's sigma that maximises the validation log-likelihood, and every sigma's score."""
    scores = parzen_log_likelihood(val, samples, grid, block=block, device=device)
    return float(np.asarray(grid)[int(np.argmax(scores))]), scores
