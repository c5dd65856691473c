"""Initialisation helpers of the GAN networks (ReDO, ``models.redo_layers``).

``sn`` initialises a layer with ``models.blocks.init_orthogonal_`` (gain ``INIT_GAIN`` = 0.8, thesis 5.3) and
*then* wraps it in spectral normalisation (the ReDO code initialises after, which only works because the
wrapped weight shares storage with ``weight_orig``). ``skip_init`` skips the orthogonal init when every
weight is loaded right after (the released-weights import, benchmarks).
"""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn

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


def sn(layer: nn.Module, use: bool = True) -> nn.Module:
    """Orthogonal init, then spectral normalisation (when ``use``)."""
    init_(layer)
    return nn.utils.spectral_norm(layer) if use else layer
