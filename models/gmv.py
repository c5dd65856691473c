"""GMV, CGMV and their GAN baselines (thesis 4.2; Chen, Denoyer & Artières, ICLR 2018).

One module holds the four adversarial families of chapter 4.2, built on DCGAN nets sized by the image side
(``image_side = 4 * 2**L``: L stride-2 layers between 4x4 and the image):

- ``gmv``   G(c, v) with one content code c shared by a pair and one view code v per image; D judges pairs
            stacked on channels (6 channels for RGB) [authors' code]; Eq 4.3: real pairs (two views of one
            content) against generated pairs G(c, v), G(c, v').
- ``cgmv``  GMV with an encoder E (D's body with BatchNorm from the first layer, linear last) giving c = E(x);
            Eq 4.4's two negatives, weighted 1/2 each: (x, G(E(x), v)) and (G(E(x), v), G(E(x), v')) [thesis]
            (the authors' script cycles three pair types by iteration instead).
- ``ganx``  GANx-k: one noise z -> k views (a generator with 3k output channels), D on k-tuples.
- ``cgan``  conditional GAN: D sees only (x, G(E(x), v)) as its negative.

Contract: images are float32 in [0, 1], ``[B, C, S, S]``; internally nets see [-1, 1] (tanh output).
``fakes(batch, gen)`` draws a step's generated tuples; ``d_loss(batch, fakes)`` and ``g_loss(batch, fakes)``
are the two losses of one training step (discriminator first, on detached fakes; then generator/encoder
against the updated D). models/mathieu.py has the same interface. Targets use one-sided smoothing
of both labels, 0.9 / 0.1 [authors' code]. Initialisation N(0, 0.02), BatchNorm N(1, 0.02).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.blocks import ModelConfigError, config_from_dict, init_normal_

REAL, FAKE = 0.9, 0.1          # smoothed labels [authors' code]
VARIANTS = ("gmv", "cgmv", "ganx", "cgan")


def n_levels(image_side: int) -> int:
    """Stride-2 layers between a 4x4 map and the image: image_side must be 4 * 2**L with L >= 1."""
    levels = math.log2(image_side / 4) if image_side >= 8 else -1
    if levels < 1 or levels != int(levels):
        raise ModelConfigError(f"image_size must be 4 * 2**L (8, 16, 32, 64, 128 ...), got {image_side!r}")
    return int(levels)


class Generator(nn.Module):
    """DCGAN generator: a vector -> 4x4 map (ConvT) -> L stride-2 ConvT; BN + ReLU between, tanh at the end."""

    def __init__(self, n_in: int, channels: int, nf: int, image_side: int):
        super().__init__()
        levels = n_levels(image_side)
        widths = [nf * 2 ** i for i in reversed(range(levels))]          # e.g. 512, 256, 128, 64 at 64x64
        layers = [nn.ConvTranspose2d(n_in, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None])


class ConvBody(nn.Module):
    """DCGAN discriminator body: L stride-2 4x4 convs with LeakyReLU(0.2) down to a 4x4 map.

    ``bn_first``: BatchNorm after the first conv too (the CGMV encoder); a discriminator has none there."""

    def __init__(self, channels: int, nf: int, image_side: int, bn_first: bool = False):
        super().__init__()
        levels = n_levels(image_side)
        widths = [nf * 2 ** i for i in range(levels)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip([channels] + widths[:-1], widths)):
            layers.append(nn.Conv2d(a, b, 4, 2, 1, bias=False))
            if i > 0 or bn_first:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.LeakyReLU(0.2, True))
        self.net = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Discriminator(nn.Module):
    """ConvBody then a valid 4x4 conv to one logit per input."""

    def __init__(self, channels: int, nf: int, image_side: int):
        super().__init__()
        self.body = ConvBody(channels, nf, image_side)
        self.head = nn.Conv2d(self.body.out_channels, 1, 4, 1, 0, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).flatten()


class Encoder(nn.Module):
    """CGMV / CGAN encoder E(x) -> c: the discriminator's body with BatchNorm first, a linear layer last."""

    def __init__(self, channels: int, nf: int, image_side: int, n_out: int):
        super().__init__()
        self.body = ConvBody(channels, nf, image_side, bn_first=True)
        self.head = nn.Linear(self.body.out_channels * 16, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).flatten(1))


def to_net(x: Tensor) -> Tensor:
    return x * 2 - 1


def to_image(y: Tensor) -> Tensor:
    return (y + 1) / 2


def bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class MultiViewGAN(nn.Module):
    """One of the four variants; see the module docstring. ``views`` = k of GANx-k (2 for the others)."""

    def __init__(self, variant: str = "gmv", image_size: int = 64, channels: int = 3, c_dim: int = 64,
                 v_dim: int = 64, z_dim: int = 128, ngf: int = 64, ndf: int = 64, views: int = 2):
        super().__init__()
        if variant not in VARIANTS:
            raise ModelConfigError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if views < 2:
            raise ModelConfigError(f"views must be at least 2 (a pair), got {views}")
        n_levels(image_size)
        self.variant, self.image_size, self.channels = variant, image_size, channels
        self.c_dim, self.v_dim, self.z_dim = c_dim, v_dim, z_dim
        self.views = views if variant == "ganx" else 2
        if variant == "ganx":
            self.generator = Generator(z_dim, channels * self.views, ngf, image_size)
        else:
            self.generator = Generator(c_dim + v_dim, channels, ngf, image_size)
        self.discriminator = Discriminator(channels * self.views, ndf, image_size)
        self.encoder = Encoder(channels, ndf, image_size, c_dim) if self.conditional else None
        init_normal_(self)

    @classmethod
    def from_config(cls, cfg: dict) -> "MultiViewGAN":
        return cls(**config_from_dict(cls, cfg))

    @property
    def conditional(self) -> bool:
        return self.variant in ("cgmv", "cgan")

    def generator_parameters(self) -> list[nn.Parameter]:
        params = list(self.generator.parameters())
        return params + (list(self.encoder.parameters()) if self.encoder is not None else [])

    # ------------------------------------------------------------------ sampling (images in [0, 1])
    def render(self, c: Tensor, v: Tensor) -> Tensor:
        """G(c, v) for a batch of content and view codes."""
        return to_image(self.generator(torch.cat([c, v], 1)))

    def tuples(self, z: Tensor) -> Tensor:
        """GANx: noise [B, z_dim] -> k views [B, k, C, S, S]."""
        out = to_image(self.generator(z))
        return out.view(len(z), self.views, self.channels, self.image_size, self.image_size)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(to_net(x))

    def judge(self, views: list[Tensor]) -> Tensor:
        """D's logit for tuples given as a list of image batches (stacked on channels)."""
        return self.discriminator(to_net(torch.cat(views, 1)))

    # ------------------------------------------------------------------ training losses
    def fakes(self, batch: Tensor, gen: torch.Generator | None = None) -> list[list[Tensor]]:
        """The negative tuples of one step, each a list of image batches; ``batch`` is [B, k, C, S, S]."""
        b = len(batch)
        draw = lambda n: torch.randn(b, n, generator=gen, device=batch.device)  # noqa: E731
        if self.variant == "ganx":
            views = self.tuples(draw(self.z_dim))
            return [list(views.unbind(1))]
        if self.variant == "gmv":
            c = draw(self.c_dim)
            return [[self.render(c, draw(self.v_dim)), self.render(c, draw(self.v_dim))]]
        x = batch[:, 0]
        c = self.encode(x)
        first = self.render(c, draw(self.v_dim))
        if self.variant == "cgan":
            return [[x, first]]
        return [[x, first], [first, self.render(c, draw(self.v_dim))]]

    def d_loss(self, batch: Tensor, fakes: list[list[Tensor]]) -> Tensor:
        real = bce(self.judge(list(batch.unbind(1))), REAL)
        fake = sum(bce(self.judge([t.detach() for t in f]), FAKE) for f in fakes) / len(fakes)
        return real + fake

    def g_loss(self, batch: Tensor, fakes: list[list[Tensor]]) -> Tensor:
        return sum(bce(self.judge(f), REAL) for f in fakes) / len(fakes)


class AttributeClassifier(nn.Module):
    """The CelebA attribute classifier of Tables 4.5 / 4.6: a DCGAN discriminator body (BatchNorm throughout)
    and one linear layer to ``n_attributes`` logits (40 independent sigmoid heads)."""

    def __init__(self, image_size: int = 64, channels: int = 3, nf: int = 64, n_attributes: int = 40):
        super().__init__()
        self.body = ConvBody(channels, nf, image_size, bn_first=True)
        self.head = nn.Linear(self.body.out_channels * 16, n_attributes)
        init_normal_(self)

    @classmethod
    def from_config(cls, cfg: dict) -> "AttributeClassifier":
        return cls(**config_from_dict(cls, cfg))

    def forward(self, x: Tensor) -> Tensor:
        """Images in [0, 1] -> logits [B, n_attributes]."""
        return self.head(self.body(to_net(x)).flatten(1))
