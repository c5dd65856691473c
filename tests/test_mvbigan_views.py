"""View settings, nested view subsets of the evaluation, and the diversity / best-of-N error metric."""
from __future__ import annotations

import math

import pytest
import torch

from stages.errors import ConfigError
from stages.mvbigan.evaluate import diversity_and_error, nested_mask
from stages.mvbigan.views import make_views, specs


def test_quarters_tile_the_digit_in_order():
    y = torch.arange(784, dtype=torch.float32)[None] / 784
    tl, tr, bl, br = make_views({"setting": "quarters"}, y)
    img = y.view(28, 28)
    assert torch.equal(tl.view(14, 14), img[:14, :14]) and torch.equal(tr.view(14, 14), img[:14, 14:])
    assert torch.equal(bl.view(14, 14), img[14:, :14]) and torch.equal(br.view(14, 14), img[14:, 14:])
    assert [s["dim"] for s in specs({"setting": "quarters"})[1]] == [196] * 4


def test_incoming_views_reveal_a_fraction_and_set_the_rest_to_half():
    y = torch.rand(64, 784) * 0.4          # never 0.5, so revealed pixels are recognisable
    cfg = {"setting": "incoming", "n_views": 3, "reveal_fraction": 0.2}
    views = make_views(cfg, y, generator=torch.Generator().manual_seed(0))
    assert len(views) == 3
    for v in views:
        seen = v != 0.5
        assert torch.equal(v[seen], y[seen])
        assert seen.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert not torch.equal(views[0] != 0.5, views[1] != 0.5)   # each view reveals other pixels


def test_attr_face_views():
    y = torch.rand(2, 3, 16, 16)
    attrs = torch.tensor([[0, 1] * 20, [1, 0] * 20], dtype=torch.uint8)
    a, face = make_views({"setting": "attr-face"}, y, attrs)
    assert torch.equal(a[0, :2], torch.tensor([-1.0, 1.0]))
    assert torch.equal(face[:, :, :8], y[:, :, :8]) and bool((face[:, :, 8:] == 0.5).all())
    target, views = specs({"setting": "attr-face"}, 16)
    assert target == {"kind": "image", "channels": 3, "size": 16} and views[0] == {"kind": "vector", "dim": 40}


def test_unknown_setting():
    with pytest.raises(ConfigError, match="unknown view setting"):
        specs({"setting": "halves"})


def test_nested_masks_grow_by_one_view_and_are_seeded():
    masks = [nested_mask(20, 4, k, seed=5, device="cpu") for k in range(1, 5)]
    for k, m in enumerate(masks, start=1):
        assert torch.equal(m.sum(1), torch.full((20,), float(k)))
    for small, big in zip(masks, masks[1:]):
        assert bool((big >= small).all())
    assert torch.equal(masks[1], nested_mask(20, 4, 2, seed=5, device="cpu"))
    assert not torch.equal(masks[1], nested_mask(20, 4, 2, seed=6, device="cpu"))


def test_diversity_and_best_error_against_hand_computation():
    # one example, 3 samples of 4 pixels, truth all zeros
    s = torch.tensor([[[0.0, 0, 0, 0], [1.0, 1, 1, 1], [1.0, 0, 0, 0]]])
    truth = torch.zeros(1, 4)
    div, err = diversity_and_error(s, truth)
    # pairwise RMS: (0,1): 1, (0,2): sqrt(1/4) = 0.5, (1,2): sqrt(3/4)
    assert div.item() == pytest.approx((1 + 0.5 + math.sqrt(0.75)) / 3)
    assert err.item() == pytest.approx(0.0)
    div, err = diversity_and_error(s[:, 1:], truth)
    assert div.item() == pytest.approx(math.sqrt(0.75)) and err.item() == pytest.approx(0.5)
    # identical samples: no diversity
    same = s[:, :1].expand(1, 5, 4)
    assert diversity_and_error(same, truth)[0].item() == 0.0
