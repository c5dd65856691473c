"""MV-BiGAN conditioning diagnostics (stages/mvbigan/diagnostics.py) and the batch-norm fix of issue 16."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.mvbigan import MVBiGAN, pair_accuracy
from stages.mvbigan.diagnostics import diagnose, observed_error
from stages.mvbigan.views import make_views, observed_pixels

QUARTERS = {"setting": "quarters"}


def _digits(n: int) -> torch.Tensor:
    """n smooth, distinct 28x28 "digits" in [0, 1] (no dataset needed)."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centres = torch.rand(n, 2, generator=g) * 16 + 6
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    return torch.exp(-d2 / 20).reshape(n, 784)


def test_observed_pixels_of_quarters_by_hand():
    y = torch.zeros(2, 784)
    mask = torch.tensor([[0.0, 1, 0, 0], [1, 0, 0, 1]])
    obs = observed_pixels(QUARTERS, make_views(QUARTERS, y), mask).view(2, 28, 28)
    expect0 = torch.zeros(28, 28)
    expect0[:14, 14:] = 1                      # top-right
    expect1 = torch.zeros(28, 28)
    expect1[:14, :14] = 1                      # top-left
    expect1[14:, 14:] = 1                      # bottom-right
    assert torch.equal(obs[0], expect0) and torch.equal(obs[1], expect1)
    # each quarter's pixels are exactly the values its view carries
    y = _digits(2)
    views = make_views(QUARTERS, y)
    one = observed_pixels(QUARTERS, views, torch.tensor([[0.0, 0, 1, 0]] * 2)).bool()
    assert torch.equal(y[one].view(2, 196), views[2])


def test_observed_pixels_of_incoming_views_are_the_union_of_present_reveals():
    y = torch.full((1, 784), 0.2)
    v1, v2 = torch.full_like(y, 0.5), torch.full_like(y, 0.5)
    v1[0, :3] = 0.2
    v2[0, 2:5] = 0.2
    cfg = {"setting": "incoming", "n_views": 2, "reveal_fraction": 0.1}
    both = observed_pixels(cfg, [v1, v2], torch.ones(1, 2))
    assert both[0, :5].tolist() == [1] * 5 and both[0, 5:].sum() == 0
    first = observed_pixels(cfg, [v1, v2], torch.tensor([[1.0, 0]]))
    assert first[0, :3].sum() == 3 and first[0, 3:].sum() == 0


def test_observed_error_by_hand():
    truth = torch.zeros(1, 4)
    observed = torch.tensor([[1.0, 1, 0, 0]])
    # sample 1 agrees on the observed pixels (its error elsewhere does not count); sample 2 is off by 0.3 and 0.4
    samples = torch.tensor([[[0.0, 0.0, 9.0, 9.0], [0.3, 0.4, 0.0, 0.0]]])
    expected = (0 + np.sqrt((0.09 + 0.16) / 2)) / 2
    assert observed_error(samples, truth, observed).item() == pytest.approx(expected)


def test_pair_accuracy():
    assert pair_accuracy(torch.tensor([1.0, -1.0]), torch.tensor([-2.0, -3.0])).item() == pytest.approx(0.75)


def test_diagnose_reports_every_measure_and_leaves_training_state_alone():
    torch.manual_seed(0)
    model = MVBiGAN({"kind": "vector", "dim": 784}, [{"kind": "vector", "dim": 196}] * 4, nz=4, hidden=16, agg=16)
    y = _digits(6)
    views = make_views(QUARTERS, y)
    state = torch.random.get_rng_state()
    out = diagnose(model, QUARTERS, y, views, n_samples=3, seed=0, device="cpu")
    assert torch.equal(state, torch.random.get_rng_state()) and model.training
    keys = {f"observed_error_k{k}" for k in range(1, 5)} | {f"observed_error_chance_k{k}" for k in range(1, 5)}
    keys |= {"inversion_error", "latent_gap", "latent_spread", "d1_acc", "d2_acc"}
    assert set(out) == keys
    assert all(v.shape[0] in (6, 12) and np.isfinite(v).all() for v in out.values())
    again = diagnose(model, QUARTERS, y, views, n_samples=3, seed=0, device="cpu")
    assert all(np.array_equal(out[k], again[k]) for k in out)                 # deterministic
    # a model that reproduces the truth scores 0 on the observed pixels
    assert observed_error(y[:, None], y, torch.ones_like(y)).abs().max() == 0


def _train_encoder_variance(steps: int) -> float:
    """Mean variance of p_E(z|y) after a short training on 32 digits (issue 16's failure grew it without bound)."""
    torch.manual_seed(0)
    model = MVBiGAN({"kind": "vector", "dim": 784}, [{"kind": "vector", "dim": 196}] * 4, nz=16, hidden=64, agg=64)
    d_opt = torch.optim.Adam(model.discriminator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(model.generator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    y = _digits(32)
    views = make_views(QUARTERS, y)
    for step in range(steps):
        model.train_step(y, views, d_opt, g_opt, generator=torch.Generator().manual_seed(step))
    model.eval()
    with torch.no_grad():
        return float(model.encode_target(y)[1].mean())


def test_encoder_variance_stays_bounded_in_training():
    """Before the fix (D scored E's pairs on batch statistics E's own z fed), E inflated its variance to win:
    3.1 after 200 steps here (0.9 with it), and ~200 after 2,500 steps on 16 MNIST digits."""
    assert _train_encoder_variance(200) < 1.5
