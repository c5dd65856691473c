"""Video prediction models of thesis chapter 3.2: SRVP and the retrained SVG-LP baseline.

Both share one API: ``from_config(cfg)``, ``training_losses(x, generator)`` -> dict with a "loss" key,
``predict(x_cond, n_future, generator)`` and ``reconstruct(x)``, on float videos [B, T, C, H, W] in [0, 1].
"""
from __future__ import annotations

from torch import nn

from models.blocks import ModelConfigError
from models.mvbigan import MVBiGAN
from models.srvp import SRVP
from models.svg import SVG

MODELS: dict[str, type[nn.Module]] = {"srvp": SRVP, "svg": SVG, "mvbigan": MVBiGAN}

__all__ = ["MODELS", "MVBiGAN", "SRVP", "SVG", "ModelConfigError", "build_model"]


def build_model(name: str, cfg: dict) -> nn.Module:
    """Instantiate model ``name`` from its config mapping (unknown names or keys raise a ValueError)."""
    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name].from_config(cfg)
