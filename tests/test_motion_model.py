"""Chapter 4.1 models: shapes for every kind, each loss falls on a tiny batch, D_s pushes the encoder the
right way (Eq 4.1), the fitted sampling Gaussian, and a classifier beating chance on the synthetic data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.blocks import ModelConfigError
from models.motion import KINDS, MotionModel
from stages.datasets import emilya

T, D, E = 10, 6, 3


def make(kind: str, **kw) -> MotionModel:
    torch.manual_seed(0)
    return MotionModel(kind, frame_dim=D, window=T, hidden=16, layers=1, code=4, n_emotions=E, disc_hidden=16,
                       style=3 if kind == "dasae" else 0, **kw)


def batch(n: int = 12):
    g = torch.Generator().manual_seed(0)
    emotion = torch.arange(n) % E
    t = torch.linspace(0, 1, T)
    x = 0.5 + 0.3 * torch.sin(6.0 * t[None, :, None] * (1 + emotion[:, None, None]) + torch.arange(D))
    return (x + 0.02 * torch.randn(n, T, D, generator=g)).clamp(0, 1), emotion


@pytest.mark.parametrize("kind", KINDS)
def test_shapes(kind):
    m = make(kind)
    x, emotion = batch(5)
    if kind == "classifier":
        assert m.classify(x).shape == (5, E)
        return
    assert m.encode(x).shape == (5, 4)
    style = m.style_of(x) if kind == "dasae" else None
    out = m.decode(m.encode(x), m.condition(emotion, style))
    assert out.shape == (5, T, D) and 0 < out.min() and out.max() < 1
    g = torch.Generator().manual_seed(0)
    assert m.sample_codes(7, g).shape == (7, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_each_loss_falls_on_a_tiny_batch(kind):
    m = make(kind, adversarial_weight=0.1, adverse_weight=0.1)
    x, emotion = batch()
    ae = torch.optim.Adam(m.autoencoder_parameters(), lr=2e-2)
    d = torch.optim.Adam(m.discriminator_parameters(), lr=1e-3) if m.discriminator_parameters() else None
    key = "ce" if kind == "classifier" else "recon"
    first = m.losses(x, emotion, 0)[key].item()
    for step in range(40):
        m.train_step(x, emotion, ae, d, step, generator=torch.Generator().manual_seed(step))
    assert m.losses(x, emotion, 40)[key].item() < 0.75 * first


def test_adverse_discriminator_pushes_the_encoder_to_hide_the_emotion():
    m = make("asfsae", adverse_weight=1.0)
    x, emotion = batch(24)
    d_optim = torch.optim.Adam(m.discriminator_parameters(), lr=1e-2)
    for _ in range(100):                                  # D_s learns to read the emotion from c
        d_optim.zero_grad()
        m.discriminator_loss(m.encode(x), emotion)["total"].backward()
        d_optim.step()
    before = torch.nn.functional.cross_entropy(m.emotion_discriminator(m.encode(x)), emotion).item()
    enc = torch.optim.SGD(m.encoder.parameters(), lr=0.05)
    for _ in range(5):                                     # encoder steps on the adverse term only
        enc.zero_grad()
        (-torch.nn.functional.cross_entropy(m.emotion_discriminator(m.encode(x)), emotion)).backward()
        enc.step()
    after = torch.nn.functional.cross_entropy(m.emotion_discriminator(m.encode(x)), emotion).item()
    assert after > before                                 # D_s's loss rose: c carries less emotion
    # and the model's own loss has the same sign: its gradient on the encoder is the adverse one
    m_no = make("asfsae", adverse_weight=0.0)
    assert not m_no.has_adverse and "adverse" not in m_no.losses(x, emotion)
    terms = m.losses(x, emotion)
    assert torch.allclose(terms["total"], terms["recon"] + terms["adv_code"] - terms["adverse"])


def test_fitted_gaussian_reproduces_code_statistics():
    m = make("seq2seq")
    codes = torch.randn(4000, 4) @ torch.tensor([[1.0, 0, 0, 0], [0.5, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0.1]]) + 3
    m.fit_code_gaussian(codes, torch.randint(E, (4000,)))
    s = m.sample_codes(20000, torch.Generator().manual_seed(0))
    assert torch.allclose(s.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(s.T), torch.cov(codes.T), atol=0.1)
    assert torch.isclose(m.emotion_freq.sum(), torch.tensor(1.0))


def test_bad_config():
    with pytest.raises(ModelConfigError, match="unknown motion model kind"):
        MotionModel("lstm")
    with pytest.raises(ModelConfigError, match="style >= 1"):
        MotionModel("dasae", style=0)


def test_classifier_beats_chance_on_the_synthetic_data(tmp_path):
    acts, emos = ["walk", "throw"], ["neutral", "joy", "anger", "sadness"]
    raw = emilya.write_synthetic_emilya(tmp_path, activities=acts, emotions=emos, actors=2, frames=100,
                                        frame_rate=30, seed=0)
    cfg = dict(name="emilya", frame_rate=30, joints=23, activities=acts, emotions=emos, window=16, stride=4,
               split=[0.6, 0.2, 0.2])
    out = emilya.build_windows(emilya.read_manifest(raw, acts, emos), cfg)

    def gather(split):
        idx = out[f"starts_{split}"][:, None] + np.arange(16)
        return torch.from_numpy(out[f"frames_{split}"][idx]), torch.from_numpy(out[f"labels_{split}"][:, 1])

    (x, y), (xt, yt) = gather("train"), gather("test")
    torch.manual_seed(0)
    m = MotionModel("classifier", frame_dim=69, window=16, hidden=32, layers=1, code=16, n_emotions=4)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(80):
        idx = torch.randint(len(x), (32,), generator=g)
        m.train_step(x[idx], y[idx], opt, None, step)
    acc = (m.classify(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.5                                       # chance: 0.25
