"""Fast CPU tests of models.svg.SVG (tiny widths, B=2, T=6, 64x64)."""
from __future__ import annotations

import pytest
import torch

from models.svg import SVG
from stages.checkpoints import build_model

TINY = dict(nf=8, g_dim=16, rnn_size=16, z_dim=4, n_past=3)
B, T = 2, 6


def make(seed: int = 0, **overrides) -> SVG:
    torch.manual_seed(seed)
    return SVG.from_config({**TINY, **overrides})


def video(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(B, T, 1, 64, 64)
    start = torch.randint(0, 32, (B, 2), generator=g)
    for i in range(B):
        for j in range(T):
            r, c = (start[i] + 3 * j).tolist()
            x[i, j, :, r:r + 12, c:c + 12] = 1.0
    return x


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes():
    model, x = make(), video()
    losses = model.training_losses(x, gen())
    assert set(losses) == {"loss", "mse", "kl"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        pred = model.predict(x[:, :3], 5, gen())
        assert pred.shape == (B, 5, 1, 64, 64) and pred.min() >= 0 and pred.max() <= 1
        rec = model.reconstruct(x)
        assert rec.shape == x.shape and torch.equal(rec[:, 0], x[:, 0])


def test_every_parameter_gets_a_gradient():
    model = make()
    model.training_losses(video(), gen())["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_determinism():
    x = video()
    a, b = make(seed=2), make(seed=2)
    la, lb = a.training_losses(x, gen(5)), b.training_losses(x, gen(5))
    assert all(torch.equal(la[k], lb[k]) for k in la)
    a.eval(), b.eval()
    with torch.no_grad():
        pa = a.predict(x[:, :3], 3, gen(6))
        assert torch.equal(pa, b.predict(x[:, :3], 3, gen(6)))
        assert not torch.equal(pa, a.predict(x[:, :3], 3, gen(7)))


def test_loss_decreases_on_a_fixed_batch():
    model, x = make(), video()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    with torch.no_grad():
        start = model.training_losses(x, gen(0))["loss"].item()
    g = gen(1)
    for _ in range(30):
        opt.zero_grad()
        model.training_losses(x, g)["loss"].backward()
        opt.step()
    with torch.no_grad():
        end = model.training_losses(x, gen(0))["loss"].item()
    assert end < 0.5 * start, (start, end)


@pytest.mark.parametrize("skip_frame,expected", [(-2, 1), (-1, 2)])
def test_skip_maps_come_from_the_reference_frame(monkeypatch, skip_frame, expected):
    """Reference SVG loops feed the decoder the maps of conditioning frame n_past-1 (1-indexed), i.e. index
    n_cond-2; skip_frame=-1 selects the last conditioning frame instead."""
    model, x = make(skip_frame=skip_frame).eval(), video()
    seen = []
    decode = model._decode
    monkeypatch.setattr(model, "_decode", lambda g, s: seen.append(s) or decode(g, s))
    with torch.no_grad():
        model.predict(x[:, :3], 2, gen())
        _, maps = model.encoder(x[:, expected])
    assert len(seen) == 2
    assert all(torch.allclose(a, b) for s in seen for a, b in zip(s, maps))


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="rnn_layers"):
        SVG.from_config({"rnn_layers": 2})
    assert isinstance(build_model("svg", TINY), SVG)
