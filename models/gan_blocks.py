"""GAN layers used by ReDO: spectral-norm SAGAN residual blocks, self-attention, conditional instance norm,
CycleGAN-style residual blocks and the PSPNet pyramid pooling module.

``sn`` initialises a layer with ``models.blocks.init_orthogonal_`` (gain ``INIT_GAIN`` = 0.8, thesis 5.3) and
*then* wraps it in spectral normalisation (the ReDO code initialises after, which only works because the
wrapped weight shares storage with ``weight_orig``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import init_orthogonal_

INIT_GAIN = 0.8  # thesis 5.3: orthogonal initialisation with gain 0.8


def sn(layer: nn.Module, use: bool = True) -> nn.Module:
    """Orthogonal init, then spectral normalisation (when ``use``)."""
    init_orthogonal_(layer, INIT_GAIN)
    return nn.utils.spectral_norm(layer) if use else layer


def sn_conv(cin: int, cout: int, k: int = 3, use_sn: bool = True) -> nn.Module:
    return sn(nn.Conv2d(cin, cout, k, padding=k // 2), use_sn)


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * softmax(q^T k) v, gamma starting at 0 (identity at init); keys and
    values are 2x max-pooled as in the SAGAN code."""

    def __init__(self, ch: int, use_sn: bool = True):
        super().__init__()
        inner = max(ch // 8, 1)
        self.query = sn(nn.Conv2d(ch, inner, 1, bias=False), use_sn)
        self.key = sn(nn.Conv2d(ch, inner, 1, bias=False), use_sn)
        self.value = sn(nn.Conv2d(ch, ch, 1, bias=False), use_sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)                          # [B, c', HW]
        # SAGAN max-pools keys and values by 2 (4x fewer attended positions: memory at 64x64 stays sane).
        pool = (lambda t: F.max_pool2d(t, 2)) if h % 2 == 0 and w % 2 == 0 and h > 2 else (lambda t: t)
        k = pool(self.key(x)).flatten(2)
        v = pool(self.value(x)).flatten(2)                    # [B, C, HW/4]
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)   # [B, HW, HW/4]
        out = (v @ attn.transpose(1, 2)).view(b, c, h, w)
        return x + self.gamma * out


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are linear functions of a conditioning vector z."""

    def __init__(self, ch: int, z_dim: int, use_sn: bool = True):
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.scale = sn(nn.Linear(z_dim, ch), use_sn)
        self.shift = sn(nn.Linear(z_dim, ch), use_sn)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma = 1 + self.scale(z)[:, :, None, None]
        beta = self.shift(z)[:, :, None, None]
        return self.norm(x) * gamma + beta


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Average-pool a [B, 1, H, W] mask down to ``size`` (exact for power-of-two ratios)."""
    return mask if mask.shape[-1] == size else F.adaptive_avg_pool2d(mask, size)


class MaskedUpBlock(nn.Module):
    """Generator residual up-block: CIN-ReLU-up-conv-CIN-ReLU-conv, the mask concatenated before each conv."""

    def __init__(self, cin: int, cout: int, z_dim: int, use_sn: bool = True):
        super().__init__()
        self.cin1 = ConditionalInstanceNorm(cin, z_dim, use_sn)
        self.conv1 = sn_conv(cin + 1, cout, 3, use_sn)
        self.cin2 = ConditionalInstanceNorm(cout, z_dim, use_sn)
        self.conv2 = sn_conv(cout + 1, cout, 3, use_sn)
        self.skip = sn(nn.Conv2d(cin, cout, 1), use_sn)

    def forward(self, x: torch.Tensor, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1] * 2
        m = resize_mask(mask, size)
        h = F.interpolate(F.relu(self.cin1(x, z)), scale_factor=2, mode="nearest")
        h = self.conv1(torch.cat([h, m], 1))
        h = self.conv2(torch.cat([F.relu(self.cin2(h, z)), m], 1))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """SAGAN discriminator residual block (halves the resolution when ``down``); ``first`` skips the pre-ReLU."""

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False, use_sn: bool = True):
        super().__init__()
        self.conv1 = sn_conv(cin, cout, 3, use_sn)
        self.conv2 = sn_conv(cout, cout, 3, use_sn)
        self.skip = sn(nn.Conv2d(cin, cout, 1), use_sn) if (cin != cout or down) else None
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.first:  # the optimised first block pools before its 1x1 shortcut
            s = F.avg_pool2d(s, 2) if self.down else s
            s = self.skip(s) if self.skip is not None else s
        else:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + s


class ResBlockIN(nn.Module):
    """CycleGAN residual block: reflection pad, 3x3 conv, instance norm, ReLU, twice (no final ReLU)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PyramidPooling(nn.Module):
    """PSPNet pyramid pooling: average-pool to each bin size, 1x1 conv to ``per_bin`` channels, bilinear
    upsample, concatenate with the input (64 + 4x1 = 68 channels in ReDO's Table 5.1)."""

    def __init__(self, ch: int, bins: tuple[int, ...] = (1, 2, 3, 6), per_bin: int = 1):
        super().__init__()
        self.bins = bins
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch, per_bin, 1, bias=False), nn.InstanceNorm2d(per_bin, affine=True), nn.ReLU(True))
            if b > 1 else nn.Sequential(nn.Conv2d(ch, per_bin, 1), nn.ReLU(True))  # IN of a 1x1 map is degenerate
            for b in bins
        )
        self.out_channels = ch + per_bin * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        feats = [x]
        for b, conv in zip(self.bins, self.convs):
            pooled = conv(F.adaptive_avg_pool2d(x, b))
            feats.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return torch.cat(feats, 1)
