"""SRVP evaluation protocol: best-of-N sample selection and 95% confidence intervals.

For stochastic models SRVP (Franceschi et al., 2020) draws N samples per test sequence, averages each
sample's per-frame score over the *predicted* frames only, keeps the best sample per sequence and reports
the mean over sequences with a normal 95% interval. The same selection with the opposite direction gives
the worst sample. Inputs may be numpy arrays or CPU torch tensors; outputs are numpy.
"""
from __future__ import annotations

import numpy as np

HIGHER_IS_BETTER = {"PSNR": True, "SSIM": True, "LPIPS": False}

Z_95 = 1.96


def _time_mean(scores, metric: str) -> np.ndarray:
    """Validate ``[N_seq, N_samples, T_pred]`` scores and return their ``[N_seq, N_samples]`` time mean."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"{metric}: expected non-empty scores of shape [N_seq, N_samples, T_pred], got {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{metric}: scores contain NaN ({int(np.isnan(arr).sum())} values); refusing to select samples")
    return arr.mean(axis=-1)


def _select(scores, pick_max: bool, metric: str) -> tuple[np.ndarray, np.ndarray]:
    means = _time_mean(scores, metric)
    # argmax/argmin return the first occurrence, so ties go to the lowest sample index.
    index = means.argmax(axis=1) if pick_max else means.argmin(axis=1)
    value = np.take_along_axis(means, index[:, None], axis=1)[:, 0]
    return value, index


def select_best(scores, higher_is_better: bool, metric: str = "score") -> tuple[np.ndarray, np.ndarray]:
    """Best sample per sequence by time-averaged score.

    ``scores``: ``[N_seq, N_samples, T_pred]`` per-frame scores over predicted frames. Returns
    ``(best_value [N_seq], best_index [N_seq])`` where ``best_value`` is the chosen sample's time mean.
    ``higher_is_better`` is True for PSNR/SSIM and False for LPIPS. Ties go to the lowest index; NaN raises
    ``ValueError`` naming ``metric``; ``+inf`` (PSNR of a perfect frame) is kept as a valid best value.
    """
    return _select(scores, pick_max=higher_is_better, metric=metric)


def select_worst(scores, higher_is_better: bool, metric: str = "score") -> tuple[np.ndarray, np.ndarray]:
    """Worst sample per sequence by time-averaged score; same conventions as :func:`select_best`."""
    return _select(scores, pick_max=not higher_is_better, metric=metric)


def mean_ci95(values, metric: str = "value") -> tuple[float, float]:
    """Mean and 95% half width ``1.96 * std / sqrt(N)`` over a 1-D set of per-sequence values.

    ``std`` is the *population* standard deviation (``ddof=0``, numpy's default), because the SRVP
    evaluation code computes the interval with ``np.std``; we follow it so numbers are comparable.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{metric}: cannot compute a mean of zero values")
    if np.isnan(arr).any():
        raise ValueError(f"{metric}: values contain NaN ({int(np.isnan(arr).sum())} of {arr.size})")
    mean = float(arr.mean())
    half = float(Z_95 * arr.std(ddof=0) / np.sqrt(arr.size))
    return mean, half


__all__ = ["select_best", "select_worst", "mean_ci95", "Z_95"]
