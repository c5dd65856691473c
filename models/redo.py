"""ReDO (thesis chapter 5): unsupervised segmentation by redrawing one region at a time.

The four networks are the authors' released architectures (mickaelChen/ReDO ``models.py``; layers in
``models.redo_layers``), so the released ``best.pth`` tensors load one to one (``stages/redo/weights.py``):

- ``MaskNetwork`` F (``netEncM``, Table 5.1): stem (reflect pad 3, 7x7 conv, two stride-2 convs), residual
  blocks IN-ReLU(conv-IN-ReLU-conv + x), PSP pooling branches (avg-pool to 1, 2, 3, 6 bins, 1x1 conv to one
  channel, bilinear upsampling, no activation) concatenated after the features, two nearest-upsampling
  convs, reflect pad 3 + 7x7 conv (catalog A30; ``mask_out_kernel: 3`` is the table's 3x3 reading);
  sigmoid(logits / temperature) and its complement for n = 2, softmax above.
- ``RegionGenerator`` G_k (``netGenX.net.k``, Table 5.3): ``models.redo_layers.MaskedGenerator``.
- ``Discriminator`` D (``netDX``, Table 5.2): SN residual encoder of width ``nf_disc`` doubling per
  down-block (64 -> 1024 at 128x128), self-attention after the first block, one block at 4x4, sum pooling
  *without* a ReLU before it, unnormalised linear head.
- ``ZEncoder`` delta (``netRecZ.net``): the same encoder at ``nf_zenc`` without self-attention, one
  unnormalised linear to n * |z| read as [n, |z|] (catalog A31: the delta_k share all but that layer).
- Losses: hinge GAN (Eq. 5.6) on the n composites where region k is redrawn and the others keep the input,
  plus lambda_z * sum_k ||delta_k(sum_k M_k V_k) - z_k||^2, lambda_z = factor / (n |z|).
All images are float tensors in [-1, 1], [B, 3, H, W]; H = W = image_size, a power of two >= 16.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import ModelConfigError
from models.gan_blocks import init_
from models.redo_layers import Decoder, MaskedGenerator, ResBlock, SelfAttention, Stem, down_block, encoder_widths, first_block

DEFAULTS = {
    "n_regions": 2,
    "image_size": 128,
    "z_dim": 32,
    "ch": 32,              # G_k width nfX (released: 32 on Flowers/CUB, 64 on LFW)
    "nf_disc": 64,         # D width nfD (released: 64 on every dataset)
    "nf_zenc": 64,         # delta width nfZ (released: 64 on every dataset)
    "nf_mask": 64,         # F width nfM at 32x32 (Table 5.1: 16, 32, 64)
    "n_res_mask": 3,
    "mask_out_kernel": 7,  # released 7x7 with reflect pad 3; 3 = Table 5.1's 3x3 read with pad 1 (A30)
    "temperature": 1.0,    # F's sigmoid / softmax temperature (released option, 1)
    "self_attention": True,
    "lambda_z_factor": 5.0,  # lambda_z = factor / (n * |z|); 15 for LFW
}


def _levels(size: int) -> int:
    levels = math.log2(size / 4)
    if size < 16 or levels != int(levels):
        raise ModelConfigError(f"image_size must be a power of two >= 16, got {size}")
    return int(levels)


class MaskNetwork(nn.Module):
    """F: image -> n soft masks summing to 1."""

    CONFIG_KEYS = ("n_regions", "nf_mask", "n_res_mask", "mask_out_kernel", "temperature")
    BINS = (1, 2, 3, 6)

    @classmethod
    def from_config(cls, cfg: dict) -> "MaskNetwork":
        """F alone from a model block (the supervised baseline)."""
        unknown = set(cfg) - set(cls.CONFIG_KEYS)
        if unknown:
            raise ModelConfigError(f"unknown mask network config keys {sorted(unknown)}; known: {list(cls.CONFIG_KEYS)}")
        full = {k: DEFAULTS[k] for k in cls.CONFIG_KEYS} | cfg
        return cls(full["n_regions"], full["nf_mask"], full["n_res_mask"], full["mask_out_kernel"], full["temperature"])

    def __init__(self, n_regions: int, nf: int = 64, n_res: int = 3, out_kernel: int = 7, temperature: float = 1.0):
        super().__init__()
        if n_regions < 2:
            raise ModelConfigError(f"n_regions must be >= 2, got {n_regions}")
        if out_kernel not in (3, 7):
            raise ModelConfigError(f"mask_out_kernel must be 7 (released) or 3 (thesis table), got {out_kernel}")
        self.n_regions, self.temperature = n_regions, float(temperature)
        self.cnn = nn.Sequential(Stem(nf), *[ResBlock(nf) for _ in range(n_res)])
        self.psp = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(nf, 1, 1)) for b in self.BINS)
        self.out = Decoder(nf + len(self.BINS), 1 if n_regions == 2 else n_regions, out_kernel)
        init_(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x)
        size = f.shape[-2:]
        pooled = [F.interpolate(branch(f), size=size, mode="bilinear", align_corners=False) for branch in self.psp]
        return self.out(torch.cat([f, *pooled], 1)) / self.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        if self.n_regions == 2:
            m = torch.sigmoid(logits)
            return torch.cat([m, 1 - m], 1)
        return torch.softmax(logits, 1)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel log-probabilities of the regions (for the supervised baseline's cross-entropy)."""
        logits = self.logits(x)
        if self.n_regions == 2:
            return torch.cat([F.logsigmoid(logits), F.logsigmoid(-logits)], 1)
        return torch.log_softmax(logits, 1)


class RegionGenerator(MaskedGenerator):
    """G_k(mask, z) -> an image of the region, [-1, 1]."""

    def __init__(self, z_dim: int, ch: int, image_size: int, self_attention: bool = True):
        super().__init__(z_dim, ch, _levels(image_size), self_attention)


class Discriminator(nn.Module):
    """D: first block, self-attention, down-blocks to 4x4, a block at 4x4, sum pooling, linear."""

    def __init__(self, nf: int, image_size: int, self_attention: bool = True):
        super().__init__()
        widths = encoder_widths(nf, _levels(image_size))
        self.bloc0, self.sc0 = first_block(nf)
        self.selfAtt = SelfAttention(nf) if self_attention else nn.Identity()
        pairs = [down_block(widths[k - 1], widths[k]) for k in range(1, len(widths))]
        pairs.append(down_block(widths[-1], widths[-1], down=False))
        self.blocs = nn.ModuleList(p[0] for p in pairs)
        self.sc = nn.ModuleList(p[1] for p in pairs)
        self.dense = nn.Linear(widths[-1], 1)
        init_(self.dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.selfAtt(self.bloc0(x) + self.sc0(x))
        for bloc, sc in zip(self.blocs, self.sc):
            x = bloc(x) + sc(x)
        return self.dense(x.sum(dim=(2, 3))).squeeze(1)


class ResEncoder(nn.Module):
    """delta's trunk and head (released ``_resEncoder128``): no self-attention, one linear to n_out."""

    def __init__(self, nf: int, image_size: int, n_out: int):
        super().__init__()
        widths = encoder_widths(nf, _levels(image_size))
        pairs = [first_block(nf)] + [down_block(widths[k - 1], widths[k]) for k in range(1, len(widths))]
        pairs.append(down_block(widths[-1], widths[-1], down=False))
        self.blocs = nn.ModuleList(p[0] for p in pairs)
        self.sc = nn.ModuleList(p[1] for p in pairs)
        self.dense = nn.Linear(widths[-1], n_out)
        init_(self.dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for bloc, sc in zip(self.blocs, self.sc):
            x = bloc(x) + sc(x)
        return self.dense(x.sum(dim=(2, 3)))


class ZEncoder(nn.Module):
    """delta: the fully redrawn image -> [B, n, z_dim] (the linear's n * z_dim outputs read region-major)."""

    def __init__(self, n_regions: int, z_dim: int, nf: int, image_size: int):
        super().__init__()
        self.n_regions, self.z_dim = n_regions, z_dim
        self.net = ResEncoder(nf, image_size, n_regions * z_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(x.shape[0], self.n_regions, self.z_dim)


class ReDO(nn.Module):
    def __init__(self, n_regions=2, image_size=128, z_dim=32, ch=32, nf_disc=64, nf_zenc=64, nf_mask=64, n_res_mask=3,
                 mask_out_kernel=7, temperature=1.0, self_attention=True, lambda_z_factor=5.0):
        super().__init__()
        self.n_regions, self.image_size, self.z_dim = n_regions, image_size, z_dim
        self.lambda_z = lambda_z_factor / (n_regions * z_dim)
        self.mask_net = MaskNetwork(n_regions, nf_mask, n_res_mask, mask_out_kernel, temperature)
        self.generators = nn.ModuleList(RegionGenerator(z_dim, ch, image_size, self_attention) for _ in range(n_regions))
        self.disc = Discriminator(nf_disc, image_size, self_attention)
        self.z_encoder = ZEncoder(n_regions, z_dim, nf_zenc, image_size)

    @classmethod
    def from_config(cls, cfg: dict) -> "ReDO":
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise ModelConfigError(f"unknown ReDO config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        return cls(**{**DEFAULTS, **cfg})

    @staticmethod
    def initial_mask_net(cfg: dict, seed: int) -> MaskNetwork:
        """F exactly as a training run seeded with ``seed`` starts: ``__init__`` builds F first, so F alone
        built after the same ``torch.manual_seed`` draws the same weights (without the 90 M others)."""
        full = {**DEFAULTS, **cfg}
        torch.manual_seed(seed)
        return MaskNetwork.from_config({k: full[k] for k in MaskNetwork.CONFIG_KEYS})

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
        """Losses of F, the G_k and delta for one batch. D's parameters are frozen for this pass (no
        gradient is computed for them: the trainer never steps D on this loss)."""
        masks = self.mask_net(x)
        drawn = self.draw_regions(masks, z)
        fakes = self.composites(x, masks, drawn)
        frozen = [p for p in self.disc.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            scores = self.disc(fakes.flatten(0, 1))
        finally:
            for p in frozen:
                p.requires_grad_(True)
        adv = -scores.mean()
        full = (masks.unsqueeze(2) * drawn).sum(1)          # every region redrawn: input to delta ([C])
        z_err = (self.z_encoder(full) - z).pow(2).sum(dim=(1, 2)).mean()
        loss = adv + self.lambda_z * z_err
        return {"loss": loss, "adv": adv.detach(), "z_err": z_err.detach(),
                "mask_min_frac": masks.detach().mean(dim=(0, 2, 3)).min()}

    @torch.no_grad()
    def fresh_fakes(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The n composites recomputed with the current F and G_k (the released D step runs on these)."""
        masks = self.mask_net(x)
        return self.composites(x, masks, self.draw_regions(masks, z))

    def discriminator_loss(self, real: torch.Tensor, fakes: torch.Tensor) -> torch.Tensor:
        """Hinge loss on a real batch and the (detached) redrawn composites [B, n, 3, H, W]."""
        scores = self.disc(torch.cat([real, fakes.flatten(0, 1)], 0))
        b = real.shape[0]
        return F.relu(1 - scores[:b]).mean() + F.relu(1 + scores[b:]).mean()

    @torch.no_grad()
    def segment(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_net(x)
