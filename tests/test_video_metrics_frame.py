"""PSNR/SSIM per frame against hand computations, a naive loop reference and scikit-image."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from stages.metrics.frame import psnr_per_frame, ssim_per_frame


def _frames(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64)


def test_psnr_constant_images_exact():
    target = torch.zeros(1, 1, 8, 8)
    pred = torch.full((1, 1, 8, 8), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr_per_frame(pred, target).item() == pytest.approx(20.0, abs=1e-6)


def test_psnr_averages_channels_not_joint_mse():
    target = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    pred = target.clone()
    pred[:, 0] = 0.1  # channel MSE 0.01 -> 20 dB
    pred[:, 1] = 0.01  # channel MSE 1e-4 -> 40 dB
    got = psnr_per_frame(pred, target).item()
    joint = 10 * math.log10(1 / ((0.01 + 1e-4) / 2))  # ~22.97 dB, what a joint MSE would give
    assert got == pytest.approx(30.0, abs=1e-9)
    assert abs(got - joint) > 5


def test_psnr_identical_is_inf_and_pred_is_clamped():
    x = _frames((2, 3, 3, 8, 8), 0)
    assert torch.isinf(psnr_per_frame(x, x)).all()
    target = torch.ones(1, 1, 4, 4)
    assert torch.isinf(psnr_per_frame(target + 5.0, target)).all()  # clamped back to 1


def test_ssim_identical_is_one():
    x = _frames((2, 3, 2, 3, 16, 16), 1)
    torch.testing.assert_close(ssim_per_frame(x, x), torch.ones(2, 3, 2, dtype=torch.float64), rtol=0, atol=1e-12)


def _naive_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Independent reference: explicit loops over VALID window positions, float64, one channel."""
    r = np.arange(11) - 5.0
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cab = (w * (a - ma) * (b - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-6)])
def test_ssim_matches_naive_loop_reference(dtype, tol):
    x = _frames((1, 2, 20, 20), 2)
    y = (x + 0.2 * _frames((1, 2, 20, 20), 3)).clamp(0, 1)
    ref = np.mean([_naive_ssim(y[0, c].numpy(), x[0, c].numpy()) for c in range(2)])
    got = ssim_per_frame(y, x, dtype=dtype).item()
    assert got == pytest.approx(ref, abs=tol)


def test_ssim_matches_skimage_on_64x64():
    x = _frames((2, 3, 64, 64), 4)
    y = (x + 0.3 * (_frames((2, 3, 64, 64), 5) - 0.5)).clamp(0, 1)
    got = ssim_per_frame(y, x)
    for f in range(2):
        ref = structural_similarity(
            y[f].numpy(), x[f].numpy(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1.0, channel_axis=0,
        )
        assert got[f].item() == pytest.approx(ref, abs=1e-10)


def test_leading_dims_and_chunking_are_consistent():
    b, n, t = 2, 3, 4
    target = _frames((b, n, t, 1, 16, 16), 6)
    pred = (target + 0.1 * _frames((b, n, t, 1, 16, 16), 7)).clamp(0, 1)
    for fn in (psnr_per_frame, ssim_per_frame):
        full = fn(pred, target)
        assert full.shape == (b, n, t) and full.dtype == torch.float64
        torch.testing.assert_close(fn(pred, target, chunk_frames=5), full, rtol=0, atol=0)
        torch.testing.assert_close(fn(pred[1, 2], target[1, 2]), full[1, 2], rtol=0, atol=0)


def test_rejects_bad_inputs():
    x = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError):
        ssim_per_frame(x, torch.rand(2, 1, 16, 15))
    with pytest.raises(ValueError):
        ssim_per_frame(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError):
        psnr_per_frame((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
