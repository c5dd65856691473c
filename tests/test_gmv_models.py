"""Chapter 4.2 models: shapes, the losses against hand-computed values, gradients, and learning on a tiny batch."""
import math

import pytest
import torch

from models.blocks import ModelConfigError
from models.gmv import FAKE, REAL, AttributeClassifier, MultiViewGAN, n_levels
from models.mathieu import Mathieu

SMALL = dict(image_size=16, c_dim=4, v_dim=3, z_dim=5, ngf=4, ndf=4)


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


@pytest.mark.parametrize("side,levels", [(8, 1), (16, 2), (32, 3), (64, 4)])
def test_levels_follow_the_image_side(side, levels):
    assert n_levels(side) == levels
    m = MultiViewGAN(variant="cgmv", image_size=side, c_dim=2, v_dim=2, ngf=2, ndf=2)
    out = m.render(torch.randn(3, 2), torch.randn(3, 2))
    assert out.shape == (3, 3, side, side) and 0 <= out.min() and out.max() <= 1
    assert m.encode(out).shape == (3, 2)


@pytest.mark.parametrize("side", [4, 12, 48, 100])
def test_bad_image_side_is_a_config_error(side):
    with pytest.raises(ModelConfigError, match="image_size"):
        MultiViewGAN(image_size=side)


def test_unknown_key_and_variant_are_rejected():
    with pytest.raises(ModelConfigError, match="unknown"):
        MultiViewGAN.from_config({"variant": "gmv", "colour": 3})
    with pytest.raises(ModelConfigError, match="variant"):
        MultiViewGAN(variant="gan")


def test_discriminator_sees_tuples_stacked_on_channels():
    assert MultiViewGAN(variant="gmv", **SMALL).discriminator.body.net[0].in_channels == 6
    ganx = MultiViewGAN(variant="ganx", views=4, **SMALL)
    assert ganx.discriminator.body.net[0].in_channels == 12
    assert ganx.tuples(torch.randn(2, 5)).shape == (2, 4, 3, 16, 16)


class ConstantJudge:
    """Replaces D: logit a for real pairs, b for any pair containing a generated image."""

    def __init__(self, a, b):
        self.real_ids, self.a, self.b = set(), a, b

    def __call__(self, views):
        is_real = all(id(v) in self.real_ids for v in views)
        return torch.full((len(views[0]),), self.a if is_real else self.b)


@pytest.mark.parametrize("variant,n_fake_kinds", [("gmv", 1), ("cgmv", 2), ("cgan", 1), ("ganx", 1)])
def test_losses_equal_hand_computed_bce(variant, n_fake_kinds, monkeypatch):
    torch.manual_seed(0)
    m = MultiViewGAN(variant=variant, **SMALL)
    batch = torch.rand(4, 2, 3, 16, 16)
    fakes = m.fakes(batch)
    assert len(fakes) == n_fake_kinds
    if variant in ("cgmv", "cgan"):
        assert torch.equal(fakes[0][0], batch[:, 0])   # (x, G(E(x), v)): a real x beside a generated image
    judge = ConstantJudge(0.7, -1.3)
    real_views = list(batch.unbind(1))
    judge.real_ids = {id(v) for v in real_views}
    monkeypatch.setattr(batch, "unbind", lambda dim: real_views)
    monkeypatch.setattr(m, "judge", judge)
    expected_d = bce(0.7, REAL) + bce(-1.3, FAKE)     # negatives averaged: 1/2 each for CGMV
    assert m.d_loss(batch, fakes).item() == pytest.approx(expected_d, rel=1e-5)
    assert m.g_loss(batch, fakes).item() == pytest.approx(bce(-1.3, REAL), rel=1e-5)


def test_cgmv_generator_loss_reaches_the_encoder_and_not_d_step():
    torch.manual_seed(0)
    m = MultiViewGAN(variant="cgmv", **SMALL)
    batch = torch.rand(4, 2, 3, 16, 16)
    fakes = m.fakes(batch)
    m.d_loss(batch, fakes).backward()
    assert all(p.grad is None for p in m.encoder.parameters())       # D's step does not train E or G
    assert all(p.grad is None for p in m.generator.parameters())
    m.zero_grad()
    m.g_loss(batch, fakes).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters() if p.dim() > 1)


def test_discriminator_learns_to_separate_on_a_tiny_batch():
    torch.manual_seed(0)
    m = MultiViewGAN(variant="gmv", **{**SMALL, "image_size": 8})
    opt = torch.optim.Adam(m.discriminator.parameters(), lr=5e-3, betas=(0.5, 0.999))
    batch = torch.rand(8, 2, 3, 8, 8)
    gen = torch.Generator().manual_seed(1)
    fakes = [[f.detach() for f in pair] for pair in m.fakes(batch, gen)]
    losses = []
    for _ in range(30):
        loss = m.d_loss(batch, fakes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Smoothed labels bound the loss below by 2 H(0.9) = 0.65; from log 4 = 1.39 at chance.
    assert losses[0] > 1.3 and losses[-1] < losses[0] - 0.3


def test_fakes_are_deterministic_given_the_generator():
    m = MultiViewGAN(variant="gmv", **SMALL).eval()
    a = m.fakes(torch.rand(2, 2, 3, 16, 16), torch.Generator().manual_seed(3))
    b = m.fakes(torch.rand(2, 2, 3, 16, 16), torch.Generator().manual_seed(3))
    assert torch.equal(a[0][0], b[0][0]) and not torch.equal(a[0][0], a[0][1])


@pytest.mark.parametrize("arch", ["dcgan", "original"])
def test_mathieu_losses_and_interface(arch):
    torch.manual_seed(0)
    m = Mathieu(arch=arch, image_size=16, s_dim=4, z_dim=6, ngf=4, ndf=4)
    batch = torch.rand(3, 2, 3, 16, 16)
    f = m.fakes(batch)
    assert f["rec"] >= 0 and f["swap"] >= 0 and f["kl"] >= 0 and f["adv_images"].shape == (3, 3, 16, 16)
    g = m.g_loss(batch, f)
    w = m.weights
    adv = torch.nn.functional.binary_cross_entropy_with_logits(
        m.judge([f["adv_images"]]), torch.full((3,), REAL))
    assert g.item() == pytest.approx((w["rec"] * f["rec"] + w["swap"] * f["swap"] + w["kl"] * f["kl"] + adv).item(),
                                     rel=1e-5)
    assert m.encode(batch[:, 0]).shape == (3, 4) and m.render(torch.randn(3, 4), torch.randn(3, 6)).shape == (3, 3, 16, 16)
    assert not any(n.startswith("discriminator") for n, p in m.named_parameters()
                   if any(p is q for q in m.generator_parameters()))


def test_mathieu_kl_is_zero_for_the_prior():
    m = Mathieu(image_size=16, s_dim=2, z_dim=3, ngf=2, ndf=2)
    with torch.no_grad():
        m.encoder_head.weight.zero_()
        m.encoder_head.bias.zero_()                       # mu = 0, logvar = 0: q = N(0, I)
    assert m.fakes(torch.rand(2, 2, 3, 16, 16))["kl"].item() == pytest.approx(0.0, abs=1e-7)


def test_attribute_classifier_shape():
    assert AttributeClassifier(image_size=16, nf=2).eval()(torch.rand(5, 3, 16, 16)).shape == (5, 40)
