"""Layers of the ReDO networks, built as the authors' released models are (mickaelChen/ReDO ``models.py``).

Submodule names and orders follow the released state dicts (``mods``, ``blocs``, ``activationF``,
``convA``, ``gammaA`` ...) so that ``models.redo`` loads those tensors one to one; see
``stages/redo/weights.py`` for the only renaming (the network prefixes). Layers are initialised orthogonally
(gain 0.8) *before* spectral-norm wrapping (``models.gan_blocks.sn``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.gan_blocks import init_, sn


def sn_conv(cin: int, cout: int, k: int, bias: bool = True) -> nn.Module:
    return sn(nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias))


class SelfAttention(nn.Module):
    """The released self-attention: f, g to ch/8, h to ch/2, o back to ch (all 1x1, SN, no bias); g and h
    are 2x max-pooled; out = x + gamma * o(h softmax(f^T g)^T), gamma a 1-element parameter starting at 0."""

    def __init__(self, ch: int):
        super().__init__()
        self.nh, self.nv = max(ch // 8, 1), max(ch // 2, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.f = sn(nn.Conv2d(ch, self.nh, 1, bias=False))
        self.g = sn(nn.Conv2d(ch, self.nh, 1, bias=False))
        self.h = sn(nn.Conv2d(ch, self.nv, 1, bias=False))
        self.o = sn(nn.Conv2d(self.nv, ch, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, hh, ww = x.shape
        pool = (lambda t: F.max_pool2d(t, 2)) if hh % 2 == 0 and ww % 2 == 0 and hh > 2 else (lambda t: t)
        q = self.f(x).flatten(2).transpose(1, 2)               # [B, HW, nh]
        k = pool(self.g(x)).flatten(2)                         # [B, nh, HW/4]
        v = pool(self.h(x)).flatten(2)                         # [B, nv, HW/4]
        # softmax(q k^T) v, unscaled as released. Written out: q, k and v have different widths, so
        # scaled_dot_product_attention falls back to its math path anyway, plus a "safe" softmax's checks.
        attn = torch.softmax(torch.bmm(q, k), dim=-1)          # [B, HW, HW/4]
        out = torch.bmm(v, attn.transpose(1, 2))               # [B, nv, HW]
        return x + self.gamma * self.o(out.view(b, self.nv, hh, ww))


# ---- F, the mask network -------------------------------------------------------------------------------

class Stem(nn.Module):
    """Reflect pad 3, 7x7 conv, then two stride-2 3x3 convs; no conv bias (instance norm follows)."""

    def __init__(self, nf: int):
        super().__init__()
        q, h = max(nf // 4, 1), max(nf // 2, 1)
        self.mods = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, q, 7, bias=False), nn.InstanceNorm2d(q, affine=True), nn.ReLU(True),
            nn.Conv2d(q, h, 3, 2, 1, bias=False), nn.InstanceNorm2d(h, affine=True), nn.ReLU(True),
            nn.Conv2d(h, nf, 3, 2, 1, bias=False), nn.InstanceNorm2d(nf, affine=True), nn.ReLU(True),
        )

    def forward(self, x):
        return self.mods(x)


class ResBlock(nn.Module):
    """Released residual block of F: IN-ReLU(conv-IN-ReLU-conv(x) + x), zero padding."""

    def __init__(self, ch: int):
        super().__init__()
        self.blocs = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.InstanceNorm2d(ch, affine=True),
                                   nn.ReLU(True), nn.Conv2d(ch, ch, 3, 1, 1))
        self.activationF = nn.Sequential(nn.InstanceNorm2d(ch, affine=True), nn.ReLU(True))

    def forward(self, x):
        return self.activationF(self.blocs(x) + x)


class Decoder(nn.Module):
    """Two (nearest x2, 3x3 conv, IN, ReLU) stages, then reflect pad 3 and a 7x7 conv to the logits
    (``out_kernel`` 3 with reflect pad 1 is the thesis-table reading of catalog A30)."""

    def __init__(self, cin: int, n_out: int, out_kernel: int = 7):
        super().__init__()
        a, b = cin // 2, cin // 4
        self.mods = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, a, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(a, affine=True), nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(b, affine=True), nn.ReLU(True),
            nn.ReflectionPad2d(out_kernel // 2), nn.Conv2d(b, n_out, out_kernel),
        )

    def forward(self, x):
        return self.mods(x)


# ---- G_k, a region generator -----------------------------------------------------------------------------

def _cond_norm(x: torch.Tensor, z: torch.Tensor, gamma: nn.Conv2d, beta: nn.Conv2d) -> torch.Tensor:
    """Conditional instance norm as released: IN(x) * gamma(z) + beta(z), gamma/beta 1x1 convs of z
    (computed as linear maps of the [B, nz] vector: the same arithmetic, no 1x1 spatial map)."""
    g = F.linear(z, gamma.weight.flatten(1), gamma.bias)[:, :, None, None]
    b = F.linear(z, beta.weight.flatten(1), beta.bias)[:, :, None, None]
    return F.instance_norm(x) * g + b


def _mask_at(mask: torch.Tensor, size: int) -> torch.Tensor:
    return mask if mask.shape[-1] == size else F.adaptive_avg_pool2d(mask, size)


class MaskedGenerator(nn.Module):
    """One G_k: dense z -> 4x4, n_up residual up-blocks; in block k: h = convA(up(cat(relu(CIN_A(x)), mask)))
    (no bias), h = convB(relu(CIN_B(h))), x = h + sc(up(x)); the mask (average-pooled to x's size) enters
    convA and the output conv only; self-attention (at 2 nf channels) before the last block; tanh output."""

    def __init__(self, nz: int, nf: int, n_up: int, self_attention: bool = True):
        super().__init__()
        widths = [nf * 2 ** (n_up - 1)] + [nf * 2 ** (n_up - 1 - k) for k in range(n_up)]
        self.start = widths[0]
        self.selfAtt = SelfAttention(widths[-2]) if self_attention else None
        self.dense = nn.Linear(nz, 16 * self.start)
        self.convA = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), sn_conv(widths[k] + 1, widths[k + 1], 3, bias=False))
            for k in range(n_up))
        self.convB = nn.ModuleList(sn_conv(widths[k + 1], widths[k + 1], 3) for k in range(n_up))
        cond = lambda c: nn.Conv2d(nz, c, 1)  # noqa: E731
        self.gammaA = nn.ModuleList(cond(widths[k]) for k in range(n_up))
        self.gammaB = nn.ModuleList(cond(widths[k + 1]) for k in range(n_up))
        self.betaA = nn.ModuleList(cond(widths[k]) for k in range(n_up))
        self.betaB = nn.ModuleList(cond(widths[k + 1]) for k in range(n_up))
        self.sc = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), sn_conv(widths[k], widths[k + 1], 1))
            for k in range(n_up))
        self.gammaOut, self.betaOut = cond(nf), cond(nf)
        self.convOut = sn_conv(nf + 1, 3, 3)
        self.n_up = n_up
        for plain in (self.dense, self.gammaA, self.gammaB, self.betaA, self.betaB, self.gammaOut, self.betaOut):
            init_(plain)   # the layers without spectral norm (those with it were initialised before wrapping)

    def forward(self, mask: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(z.shape[0], self.start, 4, 4)
        for k in range(self.n_up):
            if k == self.n_up - 1 and self.selfAtt is not None:
                x = self.selfAtt(x)
            h = F.relu(_cond_norm(x, z, self.gammaA[k], self.betaA[k]))
            h = self.convA[k](torch.cat([h, _mask_at(mask, x.shape[-1])], 1))
            h = self.convB[k](F.relu(_cond_norm(h, z, self.gammaB[k], self.betaB[k])))
            x = h + self.sc[k](x)
        x = F.relu(_cond_norm(x, z, self.gammaOut, self.betaOut))
        return torch.tanh(self.convOut(torch.cat([x, _mask_at(mask, x.shape[-1])], 1)))


# ---- D and delta: the spectral-norm residual encoder ----------------------------------------------------

def first_block(nf: int) -> tuple[nn.Module, nn.Module]:
    """(residual path, shortcut) of the first down-block: conv-ReLU-conv-pool and pool-1x1 conv."""
    return (nn.Sequential(sn_conv(3, nf, 3), nn.ReLU(), sn_conv(nf, nf, 3), nn.AvgPool2d(2)),
            nn.Sequential(nn.AvgPool2d(2), sn_conv(3, nf, 1)))


def down_block(cin: int, cout: int, down: bool = True) -> tuple[nn.Module, nn.Module]:
    """ReLU-conv-ReLU-conv(-pool) with a pool-1x1 conv shortcut (identity for the last, 4x4 block)."""
    body = [nn.ReLU(), sn_conv(cin, cout, 3), nn.ReLU(), sn_conv(cout, cout, 3)]
    if not down:
        return nn.Sequential(*body), nn.Sequential()
    return nn.Sequential(*body, nn.AvgPool2d(2)), nn.Sequential(nn.AvgPool2d(2), sn_conv(cin, cout, 1))


def encoder_widths(nf: int, n_down: int) -> list[int]:
    """nf doubling at every down-block (64 -> 1024 at 128x128), then one block at 4x4 keeping the width."""
    return [nf * 2 ** k for k in range(n_down)]
