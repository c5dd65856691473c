"""Initialisation helpers of the GAN networks (ReDO, ``models.redo_layers``).

``sn`` initialises a layer with ``models.blocks.init_orthogonal_`` (gain ``INIT_GAIN`` = 0.8, thesis 5.3) and
*then* wraps it in spectral normalisation (the ReDO code initialises after, which only works because the
wrapped weight shares storage with ``weight_orig``). ``skip_init`` skips the orthogonal init when every
weight is loaded right after (the released-weights import, benchmarks).

Spectral normalisation is ``torch.nn.utils.spectral_norm``'s (same random u/v draws, buffers, state-dict keys
and version hooks, so checkpoints and the released weights load unchanged), but a Conv2d computes it as
``SNConv2d``: conv(x, W) / sigma + b rather than conv(x, W / sigma) + b, whichever of the output and the
weight is smaller is divided. The two are the same function (sigma = u^T W v, u and v from one power
iteration per training forward, gradients through W as torch's); for ReDO's 1024-channel D and delta
layers at 4x4-8x8 the output is ~50x smaller than the 9.4 M-number kernel, so forming W / sigma and its
backward (~10% of a released-size ReDO iteration on the CPU) is avoided.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from models.blocks import init_orthogonal_

INIT_GAIN = 0.8  # thesis 5.3: orthogonal initialisation with gain 0.8
_SKIP_INIT = False


@contextmanager
def skip_init():
    """Build networks without the orthogonal init (QR of every weight: ~30 s for ReDO's 93 M parameters),
    for weights that are loaded right after."""
    global _SKIP_INIT
    before, _SKIP_INIT = _SKIP_INIT, True
    try:
        yield
    finally:
        _SKIP_INIT = before


def init_(module: nn.Module) -> nn.Module:
    """Orthogonal init with gain 0.8 (thesis 5.3), unless inside ``skip_init``."""
    return module if _SKIP_INIT else init_orthogonal_(module, INIT_GAIN)


class SNConv2d(nn.Conv2d):
    """A Conv2d under torch's spectral normalisation, computed without forming W / sigma when the output is
    the smaller tensor (see the module docstring). Made by ``sn`` from a registered ``spectral_norm``."""

    _sn: SpectralNorm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, u, v = self.weight_orig, self.weight_u, self.weight_v
        w_mat = w.flatten(1)                      # SpectralNorm.reshape_weight_to_matrix for dim 0
        if self.training:                         # torch's power iteration, in place on the buffers
            with torch.no_grad():
                for _ in range(self._sn.n_power_iterations):
                    v = F.normalize(torch.mv(w_mat.t(), u), dim=0, eps=self._sn.eps, out=v)
                    u = F.normalize(torch.mv(w_mat, v), dim=0, eps=self._sn.eps, out=u)
                u = u.clone(memory_format=torch.contiguous_format)
                v = v.clone(memory_format=torch.contiguous_format)
        sigma = torch.dot(u, torch.mv(w_mat, v))
        if self._output_numel(x) < w.numel():
            y = self._conv_forward(x, w, None) / sigma
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        return self._conv_forward(x, w / sigma, self.bias)

    def _output_numel(self, x: torch.Tensor) -> float:
        if isinstance(self.padding, str) or self.padding_mode != "zeros":
            return math.inf          # padding modes our layers do not use: divide W, as torch does
        size = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                zip(x.shape[-2:], self.padding, self.dilation, self.kernel_size, self.stride)]
        return x.shape[0] * self.out_channels * size[0] * size[1]


def sn(layer: nn.Module, use: bool = True) -> nn.Module:
    """Orthogonal init, then spectral normalisation (when ``use``); a Conv2d becomes an ``SNConv2d``."""
    init_(layer)
    if not use:
        return layer
    layer = nn.utils.spectral_norm(layer)
    if type(layer) is nn.Conv2d:
        # Keep everything spectral_norm registered (draws, buffers, state-dict hooks) but its pre-hook,
        # which would form W / sigma before every forward; SNConv2d.forward computes the same function.
        key = next(k for k, h in layer._forward_pre_hooks.items() if isinstance(h, SpectralNorm))
        layer._sn = layer._forward_pre_hooks.pop(key)
        del layer.weight                      # the hook's stale copy: nothing may read it
        layer.__class__ = SNConv2d
    return layer
