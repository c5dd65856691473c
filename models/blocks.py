"""Building blocks shared by the model families; the one home of the helpers they have in common.

* DCGAN64 and VGG64 frame encoders / decoders for the video models (Denton & Fergus 2018 architectures, used
  by SVG and SRVP), with optional skip connections from the encoder feature maps of one frame to every
  decoder scale.
* An MLP builder and the initialisers: ``init_normal_`` (DCGAN) and ``init_orthogonal_``, the only orthogonal
  initialiser (SRVP's residual function; ReDO and ``models.gan_blocks`` with gain 0.8).
* Gaussians: ``gaussian_kl``, the only closed-form KL of diagonal Gaussians (standard deviations, or variances
  with ``variance=True`` as MV-BiGAN uses), ``DiagGaussian`` (SRVP, SVG) and ``gaussian_nll``.
* Random helpers that draw from an explicit ``torch.Generator`` (so that a run is reproducible without global
  RNG state).
* ``ModelConfigError`` (raised by every family) and ``config_from_dict``: keyword construction from a config
  dict that rejects unknown keys.

Image sizes: any multiple of 16 (the encoders halve the resolution four times, then a valid conv whose
kernel covers the remaining ``image_size // 16`` map gives a 1x1 code). The thesis uses 64; 32 is only
meant for tiny tests.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ModelConfigError", "config_from_dict", "check_image_size",
    "DCGANEncoder", "DCGANDecoder", "HeadConv2d", "OutputConvTranspose2d", "VectorConvTranspose2d",
    "VGGEncoder", "VGGDecoder", "make_encoder", "make_decoder",
    "mlp", "init_normal_", "init_orthogonal_",
    "DiagGaussian", "gaussian_kl", "gaussian_nll", "randn", "rand", "randint",
]

LEAK = 0.2  # LeakyReLU slope of the DCGAN/VGG blocks


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------
class ModelConfigError(ValueError):
    """A model hyper-parameter is unknown or invalid (stages.checkpoints.build_model reports it as a ConfigError)."""


def config_from_dict(cls: type, cfg: dict) -> dict:
    """Return ``cfg`` as keyword arguments of ``cls.__init__``, rejecting keys the constructor does not take.

    Unknown keys are an error rather than ignored: a typo in params.yaml would otherwise silently train with the
    default value.
    """
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{cls.__name__} config must be a mapping, got {type(cfg).__name__}")
    known = [name for name, p in inspect.signature(cls.__init__).parameters.items()
             if name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise ModelConfigError(
            f"unknown {cls.__name__} config key(s): {', '.join(unknown)}; known keys: {', '.join(known)}")
    return dict(cfg)


def check_image_size(image_size: int) -> int:
    if not isinstance(image_size, int) or image_size < 16 or image_size % 16:
        raise ModelConfigError(f"image_size must be a multiple of 16 (64 in the thesis), got {image_size!r}")
    return image_size


# ----------------------------------------------------------------------------------------------------------------
# Convolutional encoders / decoders
# ----------------------------------------------------------------------------------------------------------------
def _conv_bn_lrelu(conv: nn.Module, n_out: int, bn: bool = True) -> nn.Sequential:
    layers = [conv]
    if bn:
        layers.append(nn.BatchNorm2d(n_out))
    layers.append(nn.LeakyReLU(LEAK, inplace=True))
    return nn.Sequential(*layers)


def _conv3(n_in: int, n_out: int) -> nn.Sequential:
    # No conv bias: the following BatchNorm has its own shift.
    return _conv_bn_lrelu(nn.Conv2d(n_in, n_out, 3, 1, 1, bias=False), n_out)


def _channels_last(t: Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


class HeadConv2d(nn.Conv2d):
    """An encoder's last conv, whose valid kernel covers its whole input map (a 1x1 output): computed as the
    matrix product it is, which costs about a third of oneDNN's convolution at these shapes (paper SM-MNIST,
    forward + backward). Same parameters and values as ``nn.Conv2d``; other input sizes take the conv."""

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight                                  # [out, in, k, k]
        if (tuple(x.shape[-2:]) != tuple(w.shape[-2:]) or self.padding != (0, 0) or self.groups != 1
                or self.dilation != (1, 1) or self.padding_mode != "zeros"):
            return super().forward(x)
        if _channels_last(x):                            # flatten in (k, k, in) order: views, no copy
            x, w = x.permute(0, 2, 3, 1), w.permute(0, 2, 3, 1)
        return F.linear(x.flatten(1), w.flatten(1), self.bias)[:, :, None, None]


class VectorConvTranspose2d(nn.ConvTranspose2d):
    """A decoder's first transposed conv, applied to a vector seen as a 1x1 map (stride 1, no padding): each
    output map is a weighted sum of the weight's kernels, one matrix product, about a third of oneDNN's
    deconvolution at these shapes (paper SM-MNIST, forward + backward). Same parameters and values as
    ``nn.ConvTranspose2d``; the output is channels-last when the weight is (the layout the model runs in)."""

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        w = self.weight                                  # [in, out, k, k]
        if (tuple(x.shape[-2:]) != (1, 1) or output_size is not None or self.stride != (1, 1)
                or self.padding != (0, 0) or self.output_padding != (0, 0) or self.groups != 1
                or self.dilation != (1, 1)):
            return super().forward(x, output_size)
        n, (c_out, kh, kw) = x.shape[0], w.shape[1:]
        if _channels_last(w):
            out = (x.flatten(1) @ w.permute(0, 2, 3, 1).flatten(1)).view(n, kh, kw, c_out).permute(0, 3, 1, 2)
        else:
            out = (x.flatten(1) @ w.flatten(1)).view(n, c_out, kh, kw)
        return out if self.bias is None else out + self.bias[:, None, None]


class _Encoder(nn.Module):
    """Runs ``stages`` then ``head``; the stage outputs are the skip-connection maps.

    ``forward`` returns ``(code [N, n_out], skips)`` where ``skips`` lists the stage outputs deepest first, i.e. in
    the order the decoder consumes them; ``skip_channels`` gives their channel counts in the same order.
    """

    stages: nn.ModuleList
    head: nn.Module
    skip_channels: list[int]

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = []
        h = x
        for stage in self.stages:
            h = stage(h)
            skips.append(h)
        code = self.head(h).flatten(1)
        return code, skips[::-1]


class DCGANEncoder(_Encoder):
    """DCGAN discriminator: four stride-2 4x4 convs (nf, 2nf, 4nf, 8nf; the first without BatchNorm),
    LeakyReLU(0.2), then a valid conv to ``n_out`` features with BatchNorm and tanh."""

    def __init__(self, channels: int, n_out: int, nf: int = 64, image_size: int = 64):
        super().__init__()
        k = check_image_size(image_size) // 16
        widths = [nf, nf * 2, nf * 4, nf * 8]
        self.stages = nn.ModuleList([
            _conv_bn_lrelu(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), c_out, bn=i > 0)
            for i, (c_in, c_out) in enumerate(zip([channels] + widths[:-1], widths))
        ])
        self.head = nn.Sequential(HeadConv2d(nf * 8, n_out, k, 1, 0, bias=False), nn.BatchNorm2d(n_out), nn.Tanh())
        self.skip_channels = widths[::-1]


class VGGEncoder(_Encoder):
    """VGG16-like encoder: blocks of 2, 2, 3, 3 3x3 convs (nf, 2nf, 4nf, 8nf) with BatchNorm and LeakyReLU(0.2),
    max pooling between blocks, then pooling and a valid conv to ``n_out`` features with BatchNorm and tanh."""

    def __init__(self, channels: int, n_out: int, nf: int = 64, image_size: int = 64):
        super().__init__()
        k = check_image_size(image_size) // 16
        pool = lambda: nn.MaxPool2d(2, 2)  # noqa: E731
        self.stages = nn.ModuleList([
            nn.Sequential(_conv3(channels, nf), _conv3(nf, nf)),
            nn.Sequential(pool(), _conv3(nf, nf * 2), _conv3(nf * 2, nf * 2)),
            nn.Sequential(pool(), _conv3(nf * 2, nf * 4), _conv3(nf * 4, nf * 4), _conv3(nf * 4, nf * 4)),
            nn.Sequential(pool(), _conv3(nf * 4, nf * 8), _conv3(nf * 8, nf * 8), _conv3(nf * 8, nf * 8)),
        ])
        self.head = nn.Sequential(pool(), HeadConv2d(nf * 8, n_out, k, 1, 0, bias=False), nn.BatchNorm2d(n_out),
                                  nn.Tanh())
        self.skip_channels = [nf * 8, nf * 4, nf * 2, nf]


class _Decoder(nn.Module):
    """Runs ``first`` on the input vector seen as a 1x1 map, then ``stages``; before each stage the matching skip map
    (deepest first) is concatenated on channels when the decoder was built with ``skip=True``. Sigmoid output.

    ``repeats`` > 1: the skip maps are given once per group of ``repeats`` consecutive rows of ``h`` (the frames
    of one clip share one frame's maps in SVG and SRVP). The first conv of each stage is linear, so on the
    concatenation it is conv(h, W_h) + conv(skip, W_skip); the skip term is then computed once per group and
    broadcast, instead of once per row: about half the decoder's convolution work for 15-frame clips. Same
    parameters, same result up to float rounding (tests/test_video_srvp_model.py)."""

    first: nn.Module
    stages: nn.ModuleList
    skip: bool

    def forward(self, h: Tensor, skips: Sequence[Tensor] | None = None, repeats: int = 1) -> Tensor:
        if self.skip != (skips is not None):
            raise ValueError("skip maps must be given if and only if the decoder was built with skip=True")
        h = self.first(h[:, :, None, None])
        for i, stage in enumerate(self.stages):
            if skips is None:
                h = stage(h)
            elif repeats == 1:
                h = stage(torch.cat([h, skips[i]], 1))
            else:
                if h.shape[0] != skips[i].shape[0] * repeats:
                    raise ValueError(f"{h.shape[0]} rows do not make groups of {repeats} for {skips[i].shape[0]} "
                                     f"skip maps")
                h = _stage_on_concat(stage, h, skips[i], repeats)
        return torch.sigmoid(h)


def _stage_on_concat(stage: nn.Module, h: Tensor, skip: Tensor, repeats: int) -> Tensor:
    """``stage(cat([h, skip repeated per group], 1))`` with the stage's first conv split (see _Decoder)."""
    if isinstance(stage, nn.Sequential):
        h = _stage_on_concat(stage[0], h, skip, repeats)
        for module in stage[1:]:
            h = module(h)
        return h
    n = h.shape[1]
    if isinstance(stage, nn.ConvTranspose2d):   # weight [in, out, k, k]
        conv = stage.conv_transpose if isinstance(stage, OutputConvTranspose2d) else partial(_conv_transpose, stage)
        main, shared = conv(h, stage.weight[:n], stage.bias), conv(skip, stage.weight[n:], None)
    elif isinstance(stage, nn.Conv2d):          # weight [out, in, k, k]
        main, shared = (stage._conv_forward(h, stage.weight[:, :n], stage.bias),
                        stage._conv_forward(skip, stage.weight[:, n:], None))
    else:
        raise TypeError(f"a decoder stage must start with a convolution, not {type(stage).__name__}")
    return (main.unflatten(0, (-1, repeats)) + shared[:, None]).flatten(0, 1)


def _conv_transpose(conv: nn.ConvTranspose2d, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding, conv.groups,
                              conv.dilation)


class _NativeConvTranspose2d(torch.autograd.Function):
    """``F.conv_transpose2d`` forward and backward on ATen's native CPU kernels (oneDNN switched off)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.config = (stride, padding, output_padding, dilation, bias is not None)
        with _onednn_off():
            return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, 1, dilation)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, dilation, has_bias = ctx.config
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]]
        with _onednn_off():
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[1]] if has_bias else None, stride, padding, dilation, True,
                output_padding, 1, mask)
        return gx, gw, gb, None, None, None, None


@contextmanager
def _onednn_off():
    """Switch oneDNN (mkldnn) convolutions off for the enclosed ops, restoring the previous setting."""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class OutputConvTranspose2d(nn.ConvTranspose2d):
    """A decoder's last transposed conv. Same parameters and values as ``nn.ConvTranspose2d``; on CPU in float32
    with a single output channel (grey-level frames) it runs forward and backward on ATen's native kernels,
    because oneDNN's deconvolution is 2-4x slower for one output channel (the layer alone, 64 -> 1 channels,
    32 -> 64 px, 240 frames: 0.83 s forward + backward against 0.27 s, 1 thread; a whole SVG step on SM-MNIST:
    27% less CPU at smoke size, 5% at paper size). Results differ at float rounding only."""

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        if output_size is None:
            return self.conv_transpose(x, self.weight, self.bias)
        return super().forward(x, output_size)

    def conv_transpose(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This layer's transposed conv with the given weight and bias (the decoder splits its weight)."""
        if (x.device.type == "cpu" and x.dtype == torch.float32 and weight.shape[1] == 1 and self.groups == 1
                and self.padding_mode == "zeros" and not torch.is_autocast_enabled("cpu")):
            return _NativeConvTranspose2d.apply(x, weight, bias, self.stride, self.padding, self.output_padding,
                                                self.dilation)
        return _conv_transpose(self, x, weight, bias)


class DCGANDecoder(_Decoder):
    """Mirror of DCGANEncoder with transposed convs; ``n_in`` is the size of the input vector."""

    def __init__(self, channels: int, n_in: int, nf: int = 64, image_size: int = 64, skip: bool = False,
                 out_bias: bool = False):
        super().__init__()
        k = check_image_size(image_size) // 16
        c = 2 if skip else 1  # skip maps double the input channels of every stage
        self.skip = skip
        self.first = _conv_bn_lrelu(VectorConvTranspose2d(n_in, nf * 8, k, 1, 0, bias=False), nf * 8)
        up = lambda a, b: _conv_bn_lrelu(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), b)  # noqa: E731
        self.stages = nn.ModuleList([
            up(nf * 8 * c, nf * 4), up(nf * 4 * c, nf * 2), up(nf * 2 * c, nf),
            OutputConvTranspose2d(nf * c, channels, 4, 2, 1, bias=out_bias),
        ])


class VGGDecoder(_Decoder):
    """Mirror of VGGEncoder with nearest-neighbour upsampling between blocks."""

    def __init__(self, channels: int, n_in: int, nf: int = 64, image_size: int = 64, skip: bool = False,
                 out_bias: bool = False):
        super().__init__()
        k = check_image_size(image_size) // 16
        c = 2 if skip else 1
        self.skip = skip
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.first = nn.Sequential(_conv_bn_lrelu(VectorConvTranspose2d(n_in, nf * 8, k, 1, 0, bias=False), nf * 8),
                                   up())
        self.stages = nn.ModuleList([
            nn.Sequential(_conv3(nf * 8 * c, nf * 8), _conv3(nf * 8, nf * 8), _conv3(nf * 8, nf * 4), up()),
            nn.Sequential(_conv3(nf * 4 * c, nf * 4), _conv3(nf * 4, nf * 4), _conv3(nf * 4, nf * 2), up()),
            nn.Sequential(_conv3(nf * 2 * c, nf * 2), _conv3(nf * 2, nf), up()),
            nn.Sequential(_conv3(nf * c, nf), nn.Conv2d(nf, channels, 3, 1, 1, bias=out_bias)),
        ])


_ARCHS = {"dcgan": (DCGANEncoder, DCGANDecoder), "vgg": (VGGEncoder, VGGDecoder)}


def _arch(name: str):
    if name not in _ARCHS:
        raise ModelConfigError(f"unknown arch {name!r}; known: {', '.join(_ARCHS)}")
    return _ARCHS[name]


def make_encoder(arch: str, channels: int, n_out: int, nf: int = 64, image_size: int = 64) -> _Encoder:
    return _arch(arch)[0](channels, n_out, nf, image_size)


def make_decoder(arch: str, channels: int, n_in: int, nf: int = 64, image_size: int = 64, skip: bool = False,
                 out_bias: bool = False) -> _Decoder:
    return _arch(arch)[1](channels, n_in, nf, image_size, skip, out_bias)


# ----------------------------------------------------------------------------------------------------------------
# MLP and initialisation
# ----------------------------------------------------------------------------------------------------------------
def mlp(n_in: int, n_hidden: int, n_out: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` linear layers (hidden width ``n_hidden``) with ReLU between them, none after the last."""
    if n_layers < 1:
        raise ModelConfigError(f"an MLP needs at least one layer, got {n_layers}")
    dims = [n_in] + [n_hidden] * (n_layers - 1) + [n_out]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        if i > 0:
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(dims[i], dims[i + 1]))
    return nn.Sequential(*layers)


_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation: conv / linear weights N(0, std), BatchNorm weights N(1, std), biases 0.

    Other layers (LSTMs) keep PyTorch's default initialisation.
    """
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def init_orthogonal_(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """Orthogonal weights with ``gain``, biases 0, for every conv / transposed conv / linear layer of ``module``
    (in ``module.modules()`` order, which fixes the RNG draws). Other layers keep their initialisation.

    The single orthogonal initialiser of the codebase: SRVP's residual function (gain 1.41 / 1.2) and the ReDO
    networks (gain ``models.gan_blocks.INIT_GAIN`` = 0.8). Call it *before* spectral-norm wrapping: afterwards
    ``m.weight`` is derived from ``m.weight_orig`` and writing into it does not set the trained parameter.
    """
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


# ----------------------------------------------------------------------------------------------------------------
# Randomness drawn from an explicit generator
# ----------------------------------------------------------------------------------------------------------------
def randn(shape: Sequence[int], like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise with the dtype/device of ``like``.

    With a generator the noise is drawn on the generator's device then moved, so a CPU generator also drives a GPU
    model (reproducible across devices).
    """
    if generator is None:
        return torch.randn(tuple(shape), device=like.device, dtype=like.dtype)
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def rand(shape: Sequence[int], device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """Uniform [0, 1) float32 noise on ``device`` (drawn on the generator's device when one is given)."""
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    return torch.rand(tuple(shape), generator=generator, device=generator.device).to(device)


def randint(high: int, shape: Sequence[int], device: torch.device,
            generator: torch.Generator | None = None) -> Tensor:
    """Uniform integers in [0, high) on ``device``."""
    if generator is None:
        return torch.randint(high, tuple(shape), device=device)
    return torch.randint(high, tuple(shape), generator=generator, device=generator.device).to(device)


# ----------------------------------------------------------------------------------------------------------------
# Gaussians
# ----------------------------------------------------------------------------------------------------------------
STD_EPS = 1e-8  # added to softplus(raw) so that a standard deviation is never exactly 0


def gaussian_kl(mean_q: Tensor, scale_q: Tensor, mean_p: Tensor, scale_p: Tensor, *,
                variance: bool = False) -> Tensor:
    """Element-wise KL(q || p) of diagonal Gaussians q = N(mean_q, .), p = N(mean_p, .); sum over dimensions yourself.

    ``scale_q`` / ``scale_p`` are **standard deviations** by default (DiagGaussian, SRVP, SVG) and **variances**
    with ``variance=True`` (MV-BiGAN, whose networks output sigma^2). Each path works in its own parametrisation
    rather than converting (sqrt / square), so neither picks up extra rounding.
    """
    if variance:
        var_q, var_p = scale_q, scale_p
        log_ratio = 0.5 * torch.log(var_p / var_q)
    else:
        var_q, var_p = scale_q.pow(2), scale_p.pow(2)
        log_ratio = torch.log(scale_p / scale_q)
    return log_ratio + (var_q + (mean_q - mean_p).pow(2)) / (2 * var_p) - 0.5


def gaussian_nll(x: Tensor, mean: Tensor, var: float) -> Tensor:
    """Element-wise -log N(x; mean, var) for a fixed scalar variance (constant term included)."""
    var_t = torch.as_tensor(var, dtype=mean.dtype, device=mean.device)
    return 0.5 * ((x - mean).pow(2) / var_t + torch.log(2 * torch.pi * var_t))


@dataclass
class DiagGaussian:
    """Diagonal Gaussian given by its mean and standard deviation (tensors of the same shape)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def from_raw(cls, raw: Tensor) -> "DiagGaussian":
        """Split the last dimension into (mean, raw scale); std = softplus(raw scale) + 1e-8 (SRVP)."""
        mean, raw_std = raw.chunk(2, dim=-1)
        return cls(mean, F.softplus(raw_std) + STD_EPS)

    @classmethod
    def from_logvar(cls, mean: Tensor, logvar: Tensor) -> "DiagGaussian":
        """Mean / log-variance parametrisation (SVG)."""
        return cls(mean, torch.exp(0.5 * logvar))

    @classmethod
    def standard(cls, like: Tensor) -> "DiagGaussian":
        return cls(torch.zeros_like(like), torch.ones_like(like))

    def rsample(self, generator: torch.Generator | None = None) -> Tensor:
        """Reparametrised sample mean + std * eps, differentiable in mean and std."""
        return self.mean + self.std * randn(self.mean.shape, self.mean, generator)

    def kl(self, other: "DiagGaussian") -> Tensor:
        """Element-wise KL(self || other)."""
        return gaussian_kl(self.mean, self.std, other.mean, other.std)
