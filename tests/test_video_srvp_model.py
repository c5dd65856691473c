"""Fast CPU tests of models.srvp.SRVP (tiny widths, B=2, T=6, 64x64 unless stated)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.srvp import SRVP
from stages.checkpoints import build_model
from stages.errors import ConfigError
from models.blocks import DiagGaussian, gaussian_kl

TINY = dict(nf=8, nhx=16, nh_inf=16, nh_res=16, ny=6, nz=4)
B, T = 2, 6


def make(seed: int = 0, **overrides) -> SRVP:
    torch.manual_seed(seed)
    return SRVP.from_config({**TINY, **overrides})


def video(seed: int = 0, b: int = B, t: int = T, size: int = 64, channels: int = 1) -> torch.Tensor:
    """A bright square moving diagonally on a black background (SM-MNIST-like statistics)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, t, channels, size, size)
    start = torch.randint(0, size // 2, (b, 2), generator=g)
    for i in range(b):
        for j in range(t):
            r, c = (start[i] + 3 * j).tolist()
            x[i, j, :, r:r + 12, c:c + 12] = 1.0
    return x


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_and_ranges():
    model, x = make(), video()
    losses = model.training_losses(x, gen())
    assert set(losses) == {"loss", "nll", "kl_y", "kl_z", "l2_res"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        pred = model.predict(x[:, :5], 7, gen())
        assert pred.shape == (B, 7, 1, 64, 64)
        assert pred.min() >= 0 and pred.max() <= 1
        assert model.reconstruct(x).shape == x.shape
        y1 = model.infer_initial_state(x)
        w = model.content(x)
        assert y1.shape == (B, 6) and w.shape == (B, 16)
        assert model.decode_from_initial_state(y1, w, 4, gen()).shape == (B, 4, 1, 64, 64)


@pytest.mark.parametrize("overrides", [{}, {"arch": "vgg", "skip": True, "nf": 4, "image_size": 32, "channels": 3,
                                            "n_euler_steps": 2}])
def test_every_parameter_gets_a_gradient(overrides):
    model = make(**overrides)
    size, ch = overrides.get("image_size", 64), overrides.get("channels", 1)
    model.training_losses(video(size=size, channels=ch), gen())["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    groups = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert groups == {"encoder", "decoder", "content_proj", "content_out", "q_y", "q_z_lstm", "q_z_out", "prior",
                      "dynamics"}


def test_skip_model_predicts_and_swaps_content():
    model = make(arch="vgg", skip=True, nf=4, image_size=32).eval()
    xs, xt = video(0, size=32), video(5, size=32)
    with torch.no_grad():
        assert model.predict(xs[:, :5], 3, gen()).shape == (B, 3, 1, 32, 32)
        swap = model.reconstruct(xt, w=model.content(xs[:, :5]), skip_frame=xs[:, 4])
        assert swap.shape == xt.shape
        out = model.decode_from_initial_state(model.infer_initial_state(xt), model.content(xs), 3, gen(),
                                              skip_frame=xs[:, -1])
        assert out.shape == (B, 3, 1, 32, 32)


def test_predict_test_rule_for_content_and_skips(monkeypatch):
    """At test time w comes from the last nt_inf conditioning frames and the skips from the last one."""
    model = make(arch="vgg", skip=True, nf=4, image_size=32, nt_inf=3, nt_cond=5).eval()
    x = video(size=32)[:, :5]
    seen = {}
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda w, y, s=None: seen.update(w=w, s=s) or decode(w, y, s))
    with torch.no_grad():
        model.predict(x, 2, gen())
        assert torch.allclose(seen["w"], model.content(x[:, 2:]))
        assert all(torch.allclose(a, b) for a, b in zip(seen["s"], model.skip_maps(x[:, 4])))


def test_determinism_with_seed_and_generator():
    x = video()
    a, b = make(seed=3), make(seed=3)
    la, lb = a.training_losses(x, gen(7)), b.training_losses(x, gen(7))
    assert all(torch.equal(la[k], lb[k]) for k in la)
    a.eval(), b.eval()
    with torch.no_grad():
        pa, pb = a.predict(x[:, :5], 5, gen(9)), b.predict(x[:, :5], 5, gen(9))
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, a.predict(x[:, :5], 5, gen(10)))  # the generator drives the sampling


def test_loss_decreases_on_a_fixed_batch():
    model, x = make(), video()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # The Gaussian normalising constant does not depend on the parameters: compare what is left.
    const = 0.5 * math.log(2 * math.pi * model.obs_var) * x[0].numel()
    with torch.no_grad():
        start = model.training_losses(x, gen(0))["loss"].item() - const
    g = gen(1)
    for _ in range(30):
        opt.zero_grad()
        model.training_losses(x, g)["loss"].backward()
        opt.step()
    with torch.no_grad():
        end = model.training_losses(x, gen(0))["loss"].item() - const
    assert end < 0.8 * start, (start, end)


def test_content_is_permutation_invariant():
    model, x = make().eval(), video()
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        w = model.content(x[:, 1:])
        w_perm = model.content(x[:, 1:][:, perm])
        assert torch.allclose(w, w_perm, atol=1e-6)
        assert not torch.allclose(w, model.content(x[:, :5]))  # but it does depend on which frames


def test_euler_steps_use_half_step():
    model = make(n_euler_steps=2)
    y, z = torch.randn(B, 6), torch.randn(B, 4)
    f = lambda y_: model.dynamics(torch.cat([y_, z], -1))  # noqa: E731
    with torch.no_grad():
        y_half = y + 0.5 * f(y)
        expected = y_half + 0.5 * f(y_half)  # same z for both sub-steps
        got, incs = model.advance(y, z)
        assert torch.allclose(got, expected, atol=1e-6)
        assert incs.shape == (B, 2, 6)
        assert torch.allclose(model.advance(y, z, n_euler_steps=1)[0], y + f(y), atol=1e-6)


class _ConstantResidual(nn.Module):
    """f(y, z) = (3, 4, 0, ...): ||f|| = 5, ||f||^2 = 25."""

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(inp.shape[0], 6)
        out[:, 0], out[:, 1] = 3.0, 4.0
        return out


@pytest.mark.parametrize("k", [1, 2])
def test_l2_penalty_is_the_non_squared_norm(k):
    model = make(n_euler_steps=k)
    model.dynamics = _ConstantResidual()
    losses = model.training_losses(video(), gen())
    # Per example: (T-1) transitions, each k increments of norm 5/k -> 5 (T-1); squared norms would give 25 (T-1).
    assert losses["l2_res"].item() == pytest.approx(5.0 * (T - 1))


def test_gaussian_kl_against_hand_computation():
    q = DiagGaussian(torch.tensor([1.0, 0.5]), torch.tensor([2.0, 0.3]))
    p = DiagGaussian(torch.tensor([0.0, -1.0]), torch.tensor([1.0, 0.7]))
    hand = [math.log(1 / 2) + (4 + 1) / 2 - 0.5,
            math.log(0.7 / 0.3) + (0.09 + 2.25) / (2 * 0.49) - 0.5]
    assert torch.allclose(q.kl(p), torch.tensor(hand), atol=1e-6)
    assert torch.allclose(gaussian_kl(q.mean, q.std, q.mean, q.std), torch.zeros(2), atol=1e-7)
    raw = torch.tensor([0.2, -0.3, 0.0, 1.0])
    g = DiagGaussian.from_raw(raw)
    assert torch.allclose(g.std, torch.nn.functional.softplus(raw[2:]) + 1e-8)


def test_obs_var_is_a_variance():
    x = video()
    l1 = make(seed=4, obs_var=1.0).training_losses(x, gen(2))["nll"].item()
    l4 = make(seed=4, obs_var=4.0).training_losses(x, gen(2))["nll"].item()
    n = x[0].numel()
    sq = 2 * (l1 - 0.5 * n * math.log(2 * math.pi))  # per-example sum of squared errors
    assert l4 == pytest.approx(0.5 * sq / 4 + 0.5 * n * math.log(2 * math.pi * 4), rel=1e-5)


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="obs_scale"):
        SRVP.from_config({"obs_scale": 0.2})
    with pytest.raises(ConfigError, match="known: .*svg"):
        build_model("nope", {})
    model = build_model("srvp", {**TINY, "beta_z": 1.5})
    assert isinstance(model, SRVP) and model.beta_z == 1.5
    assert SRVP(**model.config).config == model.config


# ----------------------------------------------------------------------------- decoder output layer
@pytest.mark.parametrize("bias", [True, False])
def test_output_conv_transpose_matches_nn_conv_transpose(bias):
    # One output channel on CPU takes ATen's native kernels: same values and gradients as nn.ConvTranspose2d up
    # to float rounding, same parameter names (released weights load unchanged), oneDNN setting restored.
    from models.blocks import OutputConvTranspose2d

    torch.manual_seed(0)
    fast = OutputConvTranspose2d(8, 1, 4, 2, 1, bias=bias)
    ref = nn.ConvTranspose2d(8, 1, 4, 2, 1, bias=bias)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(6, 8, 16, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(xa), ref(xb)
    assert type(ya.grad_fn).__name__ == "_NativeConvTranspose2dBackward"  # the native path was taken
    assert ya.shape == (6, 1, 32, 32)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-3)
    assert torch.backends.mkldnn.enabled


def test_native_conv_transpose_gradcheck():
    from models.blocks import _NativeConvTranspose2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, dtype=torch.double, generator=g, requires_grad=True)
    w = torch.randn(3, 1, 4, 4, dtype=torch.double, generator=g, requires_grad=True)
    b = torch.randn(1, dtype=torch.double, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: _NativeConvTranspose2d.apply(x, w, b, (2, 2), (1, 1), (0, 0), (1, 1)), (x, w, b))


# ----------------------------------------------------------------------------- skip maps shared by a clip
@pytest.mark.parametrize("arch,channels", [("dcgan", 1), ("dcgan", 3), ("vgg", 1), ("vgg", 3)])
def test_decoder_with_skip_maps_per_clip_equals_the_concatenation(arch, channels):
    # repeats=t computes each stage's skip term once per clip; in float64 it equals decoding every frame with
    # its copy of the maps concatenated, values and gradients (decoder parameters, inputs, skip maps).
    from models.blocks import make_decoder, make_encoder

    torch.manual_seed(0)
    dec = make_decoder(arch, channels, 30, 8, 32, skip=True).double().train()
    _, maps = make_encoder(arch, channels, 30, 8, 32).double()(torch.randn(3, channels, 32, 32, dtype=torch.double))
    b, t = 3, 4
    h = torch.randn(b * t, 30, dtype=torch.double, requires_grad=True)
    maps = [m.detach().requires_grad_() for m in maps]
    wrt = [h, *maps, *dec.parameters()]
    ref = dec(h, [m[:, None].expand(b, t, *m.shape[1:]).flatten(0, 1) for m in maps])
    g = torch.randn_like(ref)
    grads_ref = torch.autograd.grad((ref * g).sum(), wrt)
    out = dec(h, maps, repeats=t)
    grads = torch.autograd.grad((out * g).sum(), wrt)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="groups of 5"):
        dec(h, maps, repeats=5)


def test_skip_model_decodes_each_clip_with_its_own_maps(monkeypatch):
    # SRVP hands the decoder one frame's maps per clip and the clip length as `repeats`.
    model = make(arch="vgg", skip=True, nf=4, image_size=32)
    calls = []
    decoder_forward = model.decoder.forward

    def spy(h, skips=None, repeats=1):
        calls.append((h.shape[0], {s.shape[0] for s in skips}, repeats))
        return decoder_forward(h, skips, repeats)

    monkeypatch.setattr(model.decoder, "forward", spy)
    model.training_losses(video(size=32), gen())
    assert calls == [(B * T, {B}, T)]


# ----------------------------------------------------------------------------- 1x1 layers as matrix products
def graph_ops(t: torch.Tensor) -> set[str]:
    """Names of the autograd nodes that produced ``t``."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and type(node).__name__ not in seen:
            seen.add(type(node).__name__)
            todo.extend(n for n, _ in node.next_functions)
    return seen


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_head_conv_and_vector_deconv_equal_the_nn_layers(bias, channels_last):
    # The encoder's last conv (kernel = its whole input map) and the decoder's first deconv (a vector as a 1x1
    # map) are computed as matrix products: in float64 they equal nn.Conv2d / nn.ConvTranspose2d, values and
    # gradients, in both memory layouts, with the same parameter names.
    from models.blocks import HeadConv2d, VectorConvTranspose2d

    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for fast, ref, x_shape in [
        (HeadConv2d(6, 5, 4, 1, 0, bias=bias), nn.Conv2d(6, 5, 4, 1, 0, bias=bias), (7, 6, 4, 4)),
        (VectorConvTranspose2d(6, 5, 4, 1, 0, bias=bias), nn.ConvTranspose2d(6, 5, 4, 1, 0, bias=bias), (7, 6, 1, 1)),
    ]:
        fast, ref = fast.double(), ref.double()
        ref.load_state_dict(fast.state_dict())
        fast.to(memory_format=layout)
        x = torch.randn(*x_shape, dtype=torch.double, requires_grad=True)
        out, expected = fast(x.contiguous(memory_format=layout)), ref(x)
        assert "ConvolutionBackward0" not in graph_ops(out)       # the matrix product was taken
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        assert out.is_contiguous(memory_format=layout)
        g = torch.randn_like(expected)
        grads = torch.autograd.grad((out * g).sum(), [x, *fast.parameters()])
        for a, r in zip(grads, torch.autograd.grad((expected * g).sum(), [x, *ref.parameters()])):
            torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_head_conv_on_a_larger_map_is_the_ordinary_conv():
    from models.blocks import HeadConv2d

    head = HeadConv2d(6, 5, 4, 1, 0).double()
    x = torch.randn(2, 6, 8, 8, dtype=torch.double, requires_grad=True)
    out = head(x)
    assert out.shape == (2, 5, 5, 5) and "ConvolutionBackward0" in graph_ops(out)
    torch.testing.assert_close(out, nn.functional.conv2d(x, head.weight, head.bias))


@pytest.mark.parametrize("arch", ["dcgan", "vgg"])
def test_video_codecs_use_the_matrix_product_layers(arch):
    # (Their parameter names are nn's: tests/test_import_weights.py loads the released layouts strictly.)
    from models.blocks import HeadConv2d, VectorConvTranspose2d, make_decoder, make_encoder

    enc, dec = make_encoder(arch, 1, 16, 4, 32), make_decoder(arch, 1, 10, 4, 32)
    assert sum(isinstance(m, HeadConv2d) for m in enc.modules()) == 1
    assert sum(isinstance(m, VectorConvTranspose2d) for m in dec.modules()) == 1
