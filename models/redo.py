"""ReDO (thesis chapter 5): unsupervised segmentation by redrawing one region at a time.

This module holds the ReDO model class, its networks and its losses (layers from ``models.gan_blocks``;
orthogonal init with ``models.blocks.init_orthogonal_``, gain 0.8):

- ``MaskNetwork`` F (Table 5.1): image -> n soft masks summing to 1 (sigmoid + complement for n = 2,
  softmax above). Table 5.1's last layer ("Conv 3x3, reflect pad 3") would give 132x132; we read it as a
  3x3 conv with reflection pad 1 so the output keeps the input size (catalog A30).
- ``RegionGenerator`` G_k (Table 5.3): z is the seed (linear -> 4x4) and the conditional-instance-norm
  input; the mask is concatenated before every conv; self-attention before the last up-block.
- ``ResNetTrunk`` (Table 5.2): spectral-norm down-blocks, self-attention after the first, one block at
  4x4, ReLU, spatial sum pooling. D = trunk + linear(1); the z-encoder delta = its own trunk + one linear
  head per region (the delta_k share all but their last layer; D and delta are separate networks as in
  the ReDO code, since delta is trained with the generator side and D against it).
- Training losses: hinge GAN (Eq. 5.6) on the n composites where region k is redrawn and the others keep
  the input pixels, plus lambda_z * sum_k ||delta_k(sum_k M_k * V_k) - z_k||^2, lambda_z = factor/(n |z|).
All images are float tensors in [-1, 1], [B, 3, H, W]; H = W = image_size, a power of two >= 16.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import ModelConfigError, init_orthogonal_
from models.gan_blocks import (
    INIT_GAIN,
    ConditionalInstanceNorm,
    DownBlock,
    MaskedUpBlock,
    PyramidPooling,
    ResBlockIN,
    SelfAttention,
    resize_mask,
    sn,
    sn_conv,
)

DEFAULTS = {
    "n_regions": 2,
    "image_size": 128,
    "z_dim": 32,
    "ch": 32,              # G_k and D/delta width (64 for LFW and MNIST)
    "nf_mask": 64,         # F width at 32x32 (Table 5.1: 16, 32, 64)
    "n_res_mask": 3,
    "self_attention": True,
    "lambda_z_factor": 5.0,  # lambda_z = factor / (n * |z|); 15 for LFW
}


def _levels(size: int) -> int:
    levels = math.log2(size / 4)
    if size < 16 or levels != int(levels):
        raise ModelConfigError(f"image_size must be a power of two >= 16, got {size}")
    return int(levels)


class MaskNetwork(nn.Module):
    """F: 7x7 conv, two stride-2 convs, residual blocks, pyramid pooling, two upsampling convs, output conv."""

    CONFIG_KEYS = ("n_regions", "nf_mask", "n_res_mask")

    @classmethod
    def from_config(cls, cfg: dict) -> "MaskNetwork":
        """F alone from a model block with n_regions, nf_mask and n_res_mask (the supervised baseline)."""
        unknown = set(cfg) - set(cls.CONFIG_KEYS)
        if unknown:
            raise ModelConfigError(f"unknown mask network config keys {sorted(unknown)}; known: {list(cls.CONFIG_KEYS)}")
        full = {k: DEFAULTS[k] for k in cls.CONFIG_KEYS} | cfg
        return cls(full["n_regions"], full["nf_mask"], full["n_res_mask"])

    def __init__(self, n_regions: int, nf: int = 64, n_res: int = 3):
        super().__init__()
        if n_regions < 2:
            raise ModelConfigError(f"n_regions must be >= 2, got {n_regions}")
        self.n_regions = n_regions
        q, h = max(nf // 4, 1), max(nf // 2, 1)

        def conv_in(cin, cout, **kw):
            return [nn.Conv2d(cin, cout, **kw), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(True)]

        ppm = PyramidPooling(nf)
        up1, up2 = ppm.out_channels // 2, ppm.out_channels // 4      # 68 -> 34 -> 17 in Table 5.1
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), *conv_in(3, q, kernel_size=7),
            *conv_in(q, h, kernel_size=3, stride=2, padding=1),
            *conv_in(h, nf, kernel_size=3, stride=2, padding=1),
            *[ResBlockIN(nf) for _ in range(n_res)],
            ppm,
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            *conv_in(ppm.out_channels, up1, kernel_size=3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            *conv_in(up1, up2, kernel_size=3, padding=1),
            nn.ReflectionPad2d(1), nn.Conv2d(up2, 1 if n_regions == 2 else n_regions, 3),
        )
        init_orthogonal_(self, INIT_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        if self.n_regions == 2:
            m = torch.sigmoid(logits)
            return torch.cat([m, 1 - m], 1)
        return torch.softmax(logits, 1)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel log-probabilities of the regions (for the supervised baseline's cross-entropy)."""
        logits = self.net(x)
        if self.n_regions == 2:
            return torch.cat([F.logsigmoid(logits), F.logsigmoid(-logits)], 1)
        return torch.log_softmax(logits, 1)


class RegionGenerator(nn.Module):
    """G_k(mask, z) -> an image of the region, [-1, 1]."""

    MULTS = [16, 16, 8, 4, 2, 1]  # Table 5.3 widths (x ch) at 4, 8, 16, 32, 64, 128

    def __init__(self, z_dim: int, ch: int, image_size: int, self_attention: bool = True):
        super().__init__()
        n_up = _levels(image_size)
        mults = self.MULTS[-(n_up + 1):] if n_up + 1 <= len(self.MULTS) else [16] * (n_up + 1 - 6) + self.MULTS
        self.start_ch = mults[0] * ch
        self.fc = sn(nn.Linear(z_dim, self.start_ch * 16))
        self.blocks = nn.ModuleList(MaskedUpBlock(mults[i] * ch, mults[i + 1] * ch, z_dim) for i in range(n_up))
        self.attn_at = n_up - 1 if self_attention else None  # before the last up-block (64x64 at 128)
        self.attn = SelfAttention(mults[-2] * ch) if self_attention else None
        self.out_norm = ConditionalInstanceNorm(mults[-1] * ch, z_dim)
        self.out = sn_conv(mults[-1] * ch + 1, 3, 3)

    def forward(self, mask: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.start_ch, 4, 4)
        for i, block in enumerate(self.blocks):
            if i == self.attn_at:
                h = self.attn(h)
            h = block(h, z, mask)
        h = F.relu(self.out_norm(h, z))
        return torch.tanh(self.out(torch.cat([h, resize_mask(mask, h.shape[-1])], 1)))


class ResNetTrunk(nn.Module):
    """Table 5.2 trunk: down-blocks to 4x4 (self-attention after the first), a block at 4x4, ReLU, sum pool."""

    MULTS = [1, 2, 4, 8, 16]

    def __init__(self, ch: int, image_size: int, self_attention: bool = True):
        super().__init__()
        n_down = _levels(image_size)
        mults = (self.MULTS + [16] * n_down)[:n_down]
        layers = [DownBlock(3, mults[0] * ch, first=True)]
        if self_attention:
            layers.append(SelfAttention(mults[0] * ch))
        layers += [DownBlock(mults[i - 1] * ch, mults[i] * ch) for i in range(1, n_down)]
        layers.append(DownBlock(mults[-1] * ch, mults[-1] * ch, down=False))
        self.body = nn.Sequential(*layers)
        self.out_channels = mults[-1] * ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x)).sum(dim=(2, 3))


class Discriminator(nn.Module):
    def __init__(self, ch: int, image_size: int, self_attention: bool = True):
        super().__init__()
        self.trunk = ResNetTrunk(ch, image_size, self_attention)
        self.head = init_orthogonal_(nn.Linear(self.trunk.out_channels, 1), INIT_GAIN)  # no SN on the head ([C])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)


class ZEncoder(nn.Module):
    """delta: one shared trunk, one linear head per region -> [B, n, z_dim]."""

    def __init__(self, n_regions: int, z_dim: int, ch: int, image_size: int, self_attention: bool = True):
        super().__init__()
        self.trunk = ResNetTrunk(ch, image_size, self_attention)
        self.heads = nn.ModuleList(sn(nn.Linear(self.trunk.out_channels, z_dim)) for _ in range(n_regions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.stack([head(h) for head in self.heads], 1)


class ReDO(nn.Module):
    def __init__(self, n_regions=2, image_size=128, z_dim=32, ch=32, nf_mask=64, n_res_mask=3,
                 self_attention=True, lambda_z_factor=5.0):
        super().__init__()
        self.n_regions, self.image_size, self.z_dim = n_regions, image_size, z_dim
        self.lambda_z = lambda_z_factor / (n_regions * z_dim)
        self.mask_net = MaskNetwork(n_regions, nf_mask, n_res_mask)
        self.generators = nn.ModuleList(RegionGenerator(z_dim, ch, image_size, self_attention) for _ in range(n_regions))
        self.disc = Discriminator(ch, image_size, self_attention)
        self.z_encoder = ZEncoder(n_regions, z_dim, ch, image_size, self_attention)

    @classmethod
    def from_config(cls, cfg: dict) -> "ReDO":
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise ModelConfigError(f"unknown ReDO config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        return cls(**{**DEFAULTS, **cfg})

    def sample_z(self, batch: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        device = device or next(self.parameters()).device
        return torch.randn(batch, self.n_regions, self.z_dim, generator=generator, device=device)

    def draw_regions(self, masks: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """V_k = G_k(M_k, z_k) for every region: [B, n, 3, H, W]."""
        return torch.stack([g(masks[:, k:k + 1], z[:, k]) for k, g in enumerate(self.generators)], 1)

    @staticmethod
    def composites(x: torch.Tensor, masks: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        """Image k: region k redrawn, the others keep the input: M_k V_k + (1 - M_k) x -> [B, n, 3, H, W]."""
        m = masks.unsqueeze(2)
        return m * drawn + (1 - m) * x.unsqueeze(1)

    def generator_losses(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of F, the G_k and delta for one batch (the discriminator's parameters get gradients
        too; the trainer only steps the generator-side optimisers with them)."""
        masks = self.mask_net(x)
        drawn = self.draw_regions(masks, z)
        fakes = self.composites(x, masks, drawn)
        scores = self.disc(fakes.flatten(0, 1))
        adv = -scores.mean()
        full = (masks.unsqueeze(2) * drawn).sum(1)          # every region redrawn: input to delta ([C])
        z_err = (self.z_encoder(full) - z).pow(2).sum(dim=(1, 2)).mean()
        loss = adv + self.lambda_z * z_err
        return {"loss": loss, "adv": adv.detach(), "z_err": z_err.detach(), "fakes": fakes.detach(),
                "mask_min_frac": masks.detach().mean(dim=(0, 2, 3)).min()}

    def discriminator_loss(self, real: torch.Tensor, fakes: torch.Tensor) -> torch.Tensor:
        """Hinge loss on a real batch and the (detached) redrawn composites [B, n, 3, H, W]."""
        return F.relu(1 - self.disc(real)).mean() + F.relu(1 + self.disc(fakes.flatten(0, 1))).mean()

    @torch.no_grad()
    def segment(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_net(x)
