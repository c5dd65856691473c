"""Mathieu et al. 2016 ("Disentangling factors of variation in deep representations using adversarial
training"), ported to PyTorch as the authors of GMV did for their comparison (thesis 4.2, Tables 4.4-4.6).

An encoder splits x into a specified code s (shared by images of one content) and a Gaussian
unspecified code z; a decoder G(s, z) redraws the image. Per pair (x1, x2) of one content:

    rec   |G(s1, z1) - x1|^2                      weight rec_weight
    swap  |G(s2, z1) - x1|^2  (s from the other)  weight swap_weight
    adv   D(G(s2, z~N(0, I))) judged as real       weight adv_weight (the adversarial swap)
    KL    KL(q(z1 | x1) || N(0, I))               weight kl_weight
    class D's class-embedding loss                weight class_weight: 0 in both compared configurations, so
                                                  not built (a non-zero weight is a config error)

Configurations: ``dcgan`` ("Mathieu et al. 2016+": the DCGAN nets of models/gmv.py, s 64, z 512,
weights rec 0.5 / swap 1 / adv 1 / class 0 / KL 0.1 [authors' GMV repository, mathieu.py]) and
``original`` (3x3 stride-1 convs + 2x2 pooling, narrower, as in the Lua code's layer types; OUR port, not
the authors' Lua implementation). Images in [0, 1]; same interface as models.gmv.MultiViewGAN
(fakes / d_loss / g_loss, encode / render, ``conditional``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.blocks import ModelConfigError, config_from_dict, init_normal_
from models.gmv import FAKE, REAL, ConvBody, Discriminator, Generator, bce, n_levels, to_image, to_net

ARCHS = ("dcgan", "original")


class _PoolBody(nn.Module):
    """The ``original`` encoder / discriminator body: per level a 3x3 conv + BN + ReLU, then 2x2 max pooling."""

    def __init__(self, channels: int, nf: int, image_side: int):
        super().__init__()
        layers, width = [], channels
        for i in range(n_levels(image_side)):
            out = nf * 2 ** min(i, 2)
            layers += [nn.Conv2d(width, out, 3, 1, 1), nn.BatchNorm2d(out), nn.ReLU(True), nn.MaxPool2d(2)]
            width = out
        self.net, self.out_channels = nn.Sequential(*layers), width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Mathieu(nn.Module):
    variant = "mathieu"
    conditional = True

    def __init__(self, arch: str = "dcgan", image_size: int = 64, channels: int = 3, s_dim: int = 64,
                 z_dim: int = 512, ngf: int = 64, ndf: int = 64, rec_weight: float = 0.5, swap_weight: float = 1.0,
                 adv_weight: float = 1.0, class_weight: float = 0.0, kl_weight: float = 0.1):
        super().__init__()
        if arch not in ARCHS:
            raise ModelConfigError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
        if class_weight != 0:   # both configurations of the comparison set it to 0 [authors' code]
            raise ModelConfigError(f"class_weight {class_weight} is not supported: the class-embedding loss is off (0) "
                                   "in both configurations compared in the thesis")
        self.image_size, self.channels = image_size, channels
        self.c_dim, self.v_dim = s_dim, z_dim          # the evaluation's names: content = s, view = z
        self.weights = dict(rec=rec_weight, swap=swap_weight, adv=adv_weight, cls=class_weight, kl=kl_weight)
        body = ConvBody(channels, ndf, image_size, bn_first=True) if arch == "dcgan" else _PoolBody(channels, ndf, image_size)
        self.encoder_body = body
        self.encoder_head = nn.Linear(body.out_channels * 16, s_dim + 2 * z_dim)
        self.generator = Generator(s_dim + z_dim, channels, ngf, image_size)
        self.discriminator = Discriminator(channels, ndf, image_size)
        init_normal_(self)

    @classmethod
    def from_config(cls, cfg: dict) -> "Mathieu":
        return cls(**config_from_dict(cls, cfg))

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("discriminator")]

    def _codes(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder_head(self.encoder_body(to_net(x)).flatten(1))
        return h[:, :self.c_dim], h[:, self.c_dim:self.c_dim + self.v_dim], h[:, self.c_dim + self.v_dim:]

    def encode(self, x: Tensor) -> Tensor:
        return self._codes(x)[0]

    def render(self, s: Tensor, z: Tensor) -> Tensor:
        return to_image(self.generator(torch.cat([s, z], 1)))

    def fakes(self, batch: Tensor, gen: torch.Generator | None = None) -> dict:
        x1, x2 = batch[:, 0], batch[:, 1]
        s1, mu, logvar = self._codes(x1)
        s2 = self.encode(x2)
        eps = torch.randn(mu.shape, generator=gen, device=mu.device)
        z1 = mu + eps * torch.exp(0.5 * logvar)
        prior = torch.randn(mu.shape, generator=gen, device=mu.device)
        return {"rec": F.mse_loss(self.render(s1, z1), x1), "swap": F.mse_loss(self.render(s2, z1), x1),
                "kl": 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean(),
                "adv_images": self.render(s2, prior)}

    def d_loss(self, batch: Tensor, fakes: dict) -> Tensor:
        return bce(self.judge([batch[:, 0]]), REAL) + bce(self.judge([fakes["adv_images"].detach()]), FAKE)

    def judge(self, views: list[Tensor]) -> Tensor:
        return self.discriminator(to_net(views[0]))

    def g_loss(self, batch: Tensor, fakes: dict) -> Tensor:
        w = self.weights
        return (w["rec"] * fakes["rec"] + w["swap"] * fakes["swap"] + w["kl"] * fakes["kl"]
                + w["adv"] * bce(self.judge([fakes["adv_images"]]), REAL))
