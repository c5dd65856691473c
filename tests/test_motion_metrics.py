"""Parzen log-likelihood and G2T / T2G against direct computations (scipy / brute force)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from stages.metrics.nearest import g2t_t2g, nearest_distances
from stages.metrics.parzen import choose_sigma, parzen_log_likelihood, sigma_grid


def direct_parzen(x: np.ndarray, mu: np.ndarray, sigma: float) -> float:
    x, mu = x.reshape(len(x), -1).astype(np.float64), mu.reshape(len(mu), -1).astype(np.float64)
    d2 = ((x[:, None] - mu[None]) ** 2).sum(-1)
    d = x.shape[1]
    ll = logsumexp(-d2 / (2 * sigma ** 2), axis=1) - np.log(len(mu)) - 0.5 * d * np.log(2 * np.pi * sigma ** 2)
    return float(ll.mean())


def test_parzen_equals_direct_computation_across_blocks():
    rng = np.random.default_rng(0)
    x = rng.random((37, 5, 3)).astype(np.float32)            # windows of 5 frames x 3 values, flattened
    mu = rng.random((53, 5, 3)).astype(np.float32)
    sigmas = [0.05, 0.2, 1.0]
    got = parzen_log_likelihood(x, mu, sigmas, block=8)        # blocks smaller than both sets
    want = [direct_parzen(x, mu, s) for s in sigmas]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a tiny sigma: each exp underflows in float64 unless the log-mean-exp is stabilised
    np.testing.assert_allclose(parzen_log_likelihood(x, mu, [0.01], block=16), [direct_parzen(x, mu, 0.01)], rtol=1e-5)


def test_parzen_streams_generated_batches_of_any_size():
    """Samples given as an iterator of uneven batches (as the evaluation streams them from the model) score
    exactly like the same samples given at once: blocks are re-cut, never all held."""
    rng = np.random.default_rng(4)
    x, mu = rng.random((29, 12)).astype(np.float32), rng.random((41, 12)).astype(np.float32)
    sigmas = [0.1, 0.5]
    cuts = [0, 3, 4, 17, 30, 41]
    streamed = parzen_log_likelihood(x, (mu[a:b] for a, b in zip(cuts, cuts[1:])), sigmas, block=8)
    np.testing.assert_allclose(streamed, parzen_log_likelihood(x, mu, sigmas, block=8), rtol=1e-12)
    np.testing.assert_allclose(streamed, [direct_parzen(x, mu, s) for s in sigmas], rtol=1e-5)
    with pytest.raises(ValueError, match="at least one generated sample"):
        parzen_log_likelihood(x, iter([]), sigmas)
    with pytest.raises(ValueError, match="values each"):
        parzen_log_likelihood(x, mu[:, :5], sigmas)


def test_sigma_is_chosen_on_validation():
    rng = np.random.default_rng(1)
    val = rng.normal(0.5, 0.1, (40, 6))
    samples = rng.normal(0.5, 0.1, (60, 6))
    grid = sigma_grid(0.01, 1.0, 15)
    sigma, scores = choose_sigma(val, samples, grid)
    assert sigma == grid[np.argmax([direct_parzen(val, samples, s) for s in grid])]
    assert 0.02 < sigma < 0.5 and scores.shape == (15,)


def test_g2t_t2g_equal_brute_force():
    rng = np.random.default_rng(2)
    frames = 7
    gen, real = rng.random((23, frames, 4)), rng.random((31, frames, 4))
    d = np.sqrt(((gen.reshape(23, 1, -1) - real.reshape(1, 31, -1)) ** 2).sum(-1)) / np.sqrt(frames)
    g_min, r_min = nearest_distances(gen, real, frames=frames, block=5)
    np.testing.assert_allclose(g_min, d.min(1), rtol=1e-5)
    np.testing.assert_allclose(r_min, d.min(0), rtol=1e-5)
    g2t, t2g = g2t_t2g(gen, real, frames=frames, block=64)
    assert g2t == pytest.approx(d.min(1).mean(), rel=1e-5) and t2g == pytest.approx(d.min(0).mean(), rel=1e-5)


def test_nearest_of_a_copy_is_zero():
    real = np.random.default_rng(3).random((10, 4, 2))
    g2t, t2g = g2t_t2g(real[:5], real, frames=4)
    assert g2t == pytest.approx(0, abs=1e-3) and t2g > 0


def test_exemplars_have_the_target_label():
    from stages.motion.evaluate import exemplars_of

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    labels[labels == 3] = 2                                # emotion 3 has no window: fall back
    targets = rng.integers(0, 4, 500)
    pick = exemplars_of(labels, targets, np.full(500, -1), rng)
    has = targets != 3
    assert (labels[pick[has]] == targets[has]).all() and (pick[~has] == -1).all()
    assert len(set(pick[targets == 0].tolist())) > 10     # random, not always the same window
