"""MV-BiGAN model: shapes, the closed-form Gaussian KL, nested view sets, input checks, training steps."""
from __future__ import annotations

import math

import pytest
import torch

from stages.checkpoints import build_model
from models.blocks import ModelConfigError, gaussian_kl
from models.mvbigan import MVBiGAN, positive_variance

VEC = {"target": {"kind": "vector", "dim": 16}, "views": [{"kind": "vector", "dim": 4} for _ in range(4)],
       "nz": 3, "hidden": 12, "agg": 10, "nf": 4, "lam": 1e-2}
IMG = {"target": {"kind": "image", "channels": 3, "size": 16},
       "views": [{"kind": "vector", "dim": 40}, {"kind": "image", "channels": 3, "size": 16}],
       "nz": 5, "hidden": 8, "agg": 8, "nf": 4, "lam": 1e-3}


def _vec_batch(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(b, 16, generator=g)
    return y, [y[:, 4 * k: 4 * k + 4] for k in range(4)]


def _kl_var(mu_q, var_q, mu_p, var_p):
    """MV-BiGAN's use of the shared KL: variance parametrisation, summed over the latent dimensions."""
    return gaussian_kl(mu_q, var_q, mu_p, var_p, variance=True).sum(-1)


def test_gaussian_kl_matches_hand_computation():
    # 1-D: KL(N(1, 4) || N(0, 1)) = 0.5 * (log(1/4) + (4 + 1)/1 - 1) = 0.5 * (4 - log 4)
    kl = _kl_var(torch.tensor([[1.0]]), torch.tensor([[4.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    assert kl.item() == pytest.approx(0.5 * (4 - math.log(4)), rel=1e-6)
    # 2-D sums over dimensions; KL of a distribution with itself is 0; KL is asymmetric
    mq, vq = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.25, 2.0]])
    mp, vp = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.5]])
    hand = sum(0.5 * (math.log(p / q) + (q + (a - b) ** 2) / p - 1)
               for a, q, b, p in zip([0.5, -1.0], [0.25, 2.0], [0.0, 0.0], [1.0, 0.5]))
    assert _kl_var(mq, vq, mp, vp).item() == pytest.approx(hand, rel=1e-6)
    assert _kl_var(mq, vq, mq, vq).item() == pytest.approx(0.0, abs=1e-7)
    assert _kl_var(mp, vp, mq, vq).item() != pytest.approx(hand)
    # the variance and standard-deviation parametrisations agree
    assert torch.allclose(gaussian_kl(mq, vq, mp, vp, variance=True), gaussian_kl(mq, vq.sqrt(), mp, vp.sqrt()))


def test_variances_stay_positive():
    assert bool((positive_variance(torch.tensor([-1e4, -10.0, 0.0, 10.0])) > 0).all())


@pytest.mark.parametrize("cfg", [VEC, IMG], ids=["mlp", "conv"])
def test_predict_shapes_any_subset_and_determinism(cfg):
    torch.manual_seed(0)
    model = build_model("mvbigan", cfg).eval()
    b = 3
    views = [torch.rand(b, *((s["dim"],) if s["kind"] == "vector" else (3, s["size"], s["size"]))) for s in cfg["views"]]
    mask = torch.zeros(b, len(views))
    mask[0, 0] = 1
    mask[1, -1] = 1
    mask[2] = 1
    out = model.predict(views, mask, n_samples=5, generator=torch.Generator().manual_seed(1))
    shape = (cfg["target"]["dim"],) if cfg["target"]["kind"] == "vector" else (3, 16, 16)
    assert out.shape == (b, 5, *shape)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    again = model.predict(views, mask, n_samples=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert not torch.equal(out[:, 0], out[:, 1])          # samples differ: prediction is stochastic


def test_absent_views_are_ignored():
    torch.manual_seed(0)
    model = MVBiGAN.from_config(VEC).eval()
    y, views = _vec_batch(2)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2)
    other = [views[0], views[1], torch.rand(2, 4), torch.rand(2, 4)]   # only absent views changed
    mu1, var1 = model.encode_views(views, mask)
    mu2, var2 = model.encode_views(other, mask)
    assert torch.allclose(mu1, mu2) and torch.allclose(var1, var2)


def test_growing_masks_are_nested_random_orders():
    model = MVBiGAN.from_config(VEC)
    masks = model.growing_masks(50, torch.Generator().manual_seed(0))
    assert masks.shape == (4, 50, 4)
    assert torch.equal(masks.sum(-1), torch.arange(1, 5).float()[:, None].expand(4, 50))
    assert bool((masks[1:] >= masks[:-1]).all())                    # v subset v'
    firsts = masks[0].argmax(1)
    assert len(set(firsts.tolist())) == 4                           # the first view varies across examples


@pytest.mark.parametrize("bad, message", [
    (lambda v, m: (v[:3], m[:, :3]), "expected 4 views"),
    (lambda v, m: ([v[0][:, :3], *v[1:]], m), "view 0 must have shape"),
    (lambda v, m: (v, torch.cat([torch.zeros(1, 4), m[1:]])), "empty set of views"),
    (lambda v, m: (v, m[:, :2]), "mask must be"),
])
def test_bad_views_raise_clear_errors(bad, message):
    model = MVBiGAN.from_config(VEC).eval()
    _, views = _vec_batch(3)
    views, mask = bad(views, torch.ones(3, 4))
    with pytest.raises(ValueError, match=message):
        model.predict(views, mask)


def test_config_errors():
    with pytest.raises(ModelConfigError, match="unknown MV-BiGAN config keys"):
        MVBiGAN.from_config({**VEC, "width": 3})
    with pytest.raises(ModelConfigError, match="at least one view"):
        MVBiGAN.from_config({**VEC, "views": []})
    with pytest.raises(ModelConfigError, match="4 \\* 2\\^k"):
        MVBiGAN.from_config({**IMG, "target": {"kind": "image", "channels": 3, "size": 20}})


def test_each_update_lowers_its_loss_on_a_tiny_batch_and_reaches_its_networks():
    torch.manual_seed(0)
    model = MVBiGAN.from_config(VEC)
    y, views = _vec_batch(8)
    d_opt = torch.optim.Adam(model.discriminator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(model.generator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731  same noise, masks and z for every evaluation

    def d_loss():
        return model.discriminator_loss(y, views, model._forward(y, views, gen()))["d_loss"]

    def g_loss():
        return model.generator_loss(y, views, model._forward(y, views, gen()))["g_loss"]

    before = d_loss()
    d_opt.zero_grad()
    before.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.D1.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.generator_parameters())        # D's loss never trains E, G, H
    for _ in range(3):
        d_opt.zero_grad()
        d_loss().backward()
        d_opt.step()
    assert d_loss().item() < before.item()

    before = g_loss()
    g_opt.zero_grad()
    before.backward()
    for net in (model.E, model.G, model.H):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    for _ in range(3):
        g_opt.zero_grad()
        g_loss().backward()
        g_opt.step()
    assert g_loss().item() < before.item()


def test_train_step_runs_both_updates_and_the_kl_term_is_weighted():
    torch.manual_seed(0)
    model = MVBiGAN.from_config(VEC)
    y, views = _vec_batch(8)
    d_opt = torch.optim.Adam(model.discriminator_parameters(), lr=1e-3)
    g_opt = torch.optim.Adam(model.generator_parameters(), lr=1e-3)
    d1_before = [p.clone() for p in model.D1.parameters()]
    g_before = [p.clone() for p in model.G.parameters()]
    losses = model.train_step(y, views, d_opt, g_opt, torch.Generator().manual_seed(0))
    assert set(losses) >= {"d_loss", "g_loss", "kl", "d1", "d2", "g1", "g2"}
    assert losses["kl"] > 0
    assert losses["g_loss"] == pytest.approx(losses["g1"] + losses["g2"] + VEC["lam"] * losses["kl"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(d1_before, model.D1.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.G.parameters()))
