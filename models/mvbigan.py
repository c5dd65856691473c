"""Multi-View BiGAN (thesis §3.1): sample predictions of a target y from any subset of its views.

This module holds the MVBiGAN model class, its networks (Table 3.1 conv encoder / decoder, MLP generator,
set encoder over the present views, Gaussian head, pair discriminator) and its losses; the Gaussian KL is
``models.blocks.gaussian_kl`` in its variance form.

Five networks: E (y -> Gaussian over z), G (z -> y), H (set of views -> Gaussian over z), D1 on (y, z)
and D2 on (views, z). Objective (Eq. 3.5, with A2's log(1 - D) reading): a BiGAN term matching
p_E(y, z) with p_G(y, z) (D1), a term matching p_E(v, z) with p_H(v, z) (D2), and
lambda * sum KL(p_H(z|v') || p_H(z|v)) over successive sets v subset v' of a randomly grown sequence.
E, G and H use the non-saturating generator loss; each step updates D1 and D2 first, then E, G and H
(scored by D1 and D2 with their batch norm on running statistics; see ``generator_loss``).

Views are a list of tensors (one per view, batch first) and a mask [B, K] saying which are present.
A view is either a vector ({"kind": "vector", "dim": d}) or an image ({"kind": "image", "channels": c,
"size": s}); H sums one learned map per present view (a linear map for vectors, the Table 3.1 conv
encoder for images) and then applies one hidden layer (batch norm + ReLU) before mu (tanh) and sigma^2.
The sigma^2 activation is ELU(x) + 1 (A3: the thesis's "negative exponential linear unit" read as a
positive, ELU-shaped activation), plus a small floor so every variance stays strictly positive.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import ModelConfigError, gaussian_kl

VAR_FLOOR = 1e-4


def positive_variance(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x) + 1 + VAR_FLOOR


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------

def _n_down(size: int) -> int:
    """Stride-2 layers that bring ``size`` down to 4 (64 -> 4 stride-2 layers, as in Table 3.1)."""
    n = int(round(math.log2(size / 4)))
    if n < 1 or 4 * 2 ** n != size:
        raise ModelConfigError(f"image size {size} must be 4 * 2^k with k >= 1 (e.g. 16, 32, 64)")
    return n


class ConvEncoder(nn.Module):
    """Table 3.1 (top): 4x4 stride-2 convs 64-128-256-512 (BN from the 2nd, LeakyReLU 0.2), then a
    4x4 valid conv to ``out_dim`` maps, linear. ``nf`` scales the widths (64 in the thesis)."""

    def __init__(self, channels: int, size: int, out_dim: int, nf: int = 64):
        super().__init__()
        layers, c_in = [], channels
        for i in range(_n_down(size)):
            c_out = nf * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, out_dim, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).flatten(1)


class ConvDecoder(nn.Module):
    """Table 3.1 (bottom): 4x4 transposed conv to 512 maps at 4x4, then stride-2 transposed convs
    256-128-64 (BN, ReLU) and a last one to ``channels`` maps with tanh (mapped to [0, 1] here)."""

    def __init__(self, nz: int, channels: int, size: int, nf: int = 64):
        super().__init__()
        n = _n_down(size)
        c = nf * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers.append(nn.ConvTranspose2d(c, channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return (torch.tanh(self.net(z[:, :, None, None])) + 1) / 2


class MLPGenerator(nn.Module):
    """MNIST G: 3 hidden layers with ReLU, batch norm on hidden layers 2 and 3 (A7), sigmoid output."""

    def __init__(self, nz: int, out_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(nz, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, out_dim), nn.Sigmoid(),
        )

    def forward(self, z):
        return self.net(z)


def _view_map(spec: dict, width: int, nf: int) -> nn.Module:
    if spec["kind"] == "vector":
        return nn.Linear(spec["dim"], width)
    if spec["kind"] == "image":
        return ConvEncoder(spec["channels"], spec["size"], width, nf)
    raise ModelConfigError(f"unknown view kind {spec['kind']!r}; use 'vector' or 'image'")


def _view_shape(spec: dict) -> tuple[int, ...]:
    return (spec["dim"],) if spec["kind"] == "vector" else (spec["channels"], spec["size"], spec["size"])


class SetEncoder(nn.Module):
    """Sum over present views of one map per view -> [B, width] (H, D2 and, with one view, E and D1)."""

    def __init__(self, specs: list[dict], width: int, nf: int):
        super().__init__()
        self.specs = specs
        self.maps = nn.ModuleList(_view_map(s, width, nf) for s in specs)

    def forward(self, views: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        out = 0
        for k, (m, v) in enumerate(zip(self.maps, views)):
            out = out + m(v) * mask[:, k: k + 1]
        return out


class GaussianHead(nn.Module):
    """Aggregate -> hidden (BN + ReLU) -> (mu in (-1, 1) by tanh, sigma^2 > 0)."""

    def __init__(self, width: int, hidden: int, nz: int):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True))
        self.mu = nn.Linear(hidden, nz)
        self.var = nn.Linear(hidden, nz)

    def forward(self, a):
        h = self.hidden(F.relu(a))
        return torch.tanh(self.mu(h)), positive_variance(self.var(h))


class PairDiscriminator(nn.Module):
    """D(x, z): layer 1 maps x (LeakyReLU 0.2), z is concatenated at layer 2, batch norm at layer 3, then
    the logit (the thesis's sigmoid output lives in the loss, binary_cross_entropy_with_logits)."""

    def __init__(self, encoder: SetEncoder, width: int, hidden: int, nz: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.Linear(width + nz, hidden), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 1),
        )

    def forward(self, views, mask, z):
        a = F.leaky_relu(self.encoder(views, mask), 0.2)
        return self.head(torch.cat([a, z], dim=1)).squeeze(1)


def pair_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Fraction of pairs a discriminator puts on the right side (0.5: it cannot tell them apart)."""
    right = torch.cat([real_logits > 0, fake_logits <= 0]).float()
    return right.mean().detach()


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

class MVBiGAN(nn.Module):
    """Config keys: target ({"kind": "vector", "dim": 784} or {"kind": "image", ...}), views (list of
    view specs), nz, hidden (MLP width), agg (aggregation width; 1,000 for CelebA), nf (conv width),
    lam (KL weight)."""

    KEYS = {"target", "views", "nz", "hidden", "agg", "nf", "lam"}

    def __init__(self, target: dict, views: list[dict], nz: int = 128, hidden: int = 1500, agg: int = 1500,
                 nf: int = 64, lam: float = 1e-3):
        super().__init__()
        if not views:
            raise ModelConfigError("MV-BiGAN needs at least one view")
        self.target_spec, self.view_specs, self.nz, self.lam = target, list(views), nz, lam
        self.n_views = len(views)
        # E: y -> p_E(z|y); G: z -> y
        self.E = nn.ModuleDict({"enc": SetEncoder([target], agg, nf), "head": GaussianHead(agg, hidden, nz)})
        if target["kind"] == "vector":
            self.G = MLPGenerator(nz, target["dim"], hidden)
        else:
            self.G = ConvDecoder(nz, target["channels"], target["size"], nf)
        # H: views -> p_H(z|v)
        self.H = nn.ModuleDict({"enc": SetEncoder(self.view_specs, agg, nf), "head": GaussianHead(agg, hidden, nz)})
        self.D1 = PairDiscriminator(SetEncoder([target], agg, nf), agg, hidden, nz)
        self.D2 = PairDiscriminator(SetEncoder(self.view_specs, agg, nf), agg, hidden, nz)

    @classmethod
    def from_config(cls, cfg: dict) -> "MVBiGAN":
        unknown = set(cfg) - cls.KEYS
        if unknown:
            raise ModelConfigError(f"unknown MV-BiGAN config keys {sorted(unknown)}; known: {sorted(cls.KEYS)}")
        return cls(**cfg)

    # parameter groups of the two optimisers
    def discriminator_parameters(self):
        return [*self.D1.parameters(), *self.D2.parameters()]

    def generator_parameters(self):
        return [*self.E.parameters(), *self.G.parameters(), *self.H.parameters()]

    # ---------------------------------------------------------------- input checks
    def check_views(self, views: list[torch.Tensor], mask: torch.Tensor) -> None:
        """Clear errors for a wrong number of views, wrong shapes, or an example with no view at all."""
        if len(views) != self.n_views:
            raise ValueError(f"expected {self.n_views} views, got {len(views)}")
        b = mask.shape[0]
        if mask.shape != (b, self.n_views):
            raise ValueError(f"view mask must be [batch, {self.n_views}], got {list(mask.shape)}")
        for k, (v, spec) in enumerate(zip(views, self.view_specs)):
            if tuple(v.shape) != (b, *_view_shape(spec)):
                raise ValueError(f"view {k} must have shape [batch={b}, {', '.join(map(str, _view_shape(spec)))}], "
                                 f"got {list(v.shape)}")
        if bool((mask.sum(1) == 0).any()):
            raise ValueError("an example has an empty set of views: give at least one view per example")

    # ---------------------------------------------------------------- distributions
    def encode_target(self, y):
        ones = y.new_ones(y.shape[0], 1)
        return self.E["head"](self.E["enc"]([y], ones))

    def encode_views(self, views, mask):
        return self.H["head"](self.H["enc"](views, mask))

    @staticmethod
    def reparam(mu, var, generator=None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + var.sqrt() * eps

    @torch.no_grad()
    def predict(self, views, mask, n_samples: int = 1, generator=None) -> torch.Tensor:
        """``n_samples`` predictions of y per example: [B, n_samples, *target shape]."""
        self.check_views(views, mask)
        mu, var = self.encode_views(views, mask)
        b = mu.shape[0]
        mu = mu.repeat_interleave(n_samples, 0)
        var = var.repeat_interleave(n_samples, 0)
        y = self.G(self.reparam(mu, var, generator))
        return y.view(b, n_samples, *y.shape[1:])

    # ---------------------------------------------------------------- diagnostics
    @torch.no_grad()
    def inversion_error(self, y: torch.Tensor) -> torch.Tensor:
        """Per example, the RMS distance between y and G(mu_E(y)): does G invert E (the BiGAN half)?"""
        mu, _ = self.encode_target(y)
        return ((self.G(mu) - y) ** 2).flatten(1).mean(1).sqrt()

    @torch.no_grad()
    def latent_gap(self, y: torch.Tensor, views: list[torch.Tensor]) -> torch.Tensor:
        """Per example, the RMS (over z dimensions) distance between mu_H(all views) and mu_E(y): does H
        land where E puts the target? Compare with ``latent_spread`` (the same distance between examples)."""
        mu_e, _ = self.encode_target(y)
        mu_h, _ = self.encode_views(views, y.new_ones(y.shape[0], self.n_views))
        return ((mu_h - mu_e) ** 2).mean(1).sqrt()

    @torch.no_grad()
    def latent_spread(self, y: torch.Tensor) -> torch.Tensor:
        """Per example, the RMS distance between mu_E(y) and mu_E of the next example (the scale of latent_gap)."""
        mu_e, _ = self.encode_target(y)
        return ((mu_e - mu_e.roll(1, 0)) ** 2).mean(1).sqrt()

    # ---------------------------------------------------------------- training
    def growing_masks(self, b: int, generator=None, device=None) -> torch.Tensor:
        """Per example a random order of the views; masks [K, B, K] of the nested sets of 1..K views."""
        order = torch.argsort(torch.rand(b, self.n_views, generator=generator, device=device), dim=1)
        rank = torch.argsort(order, dim=1)  # rank[b, k]: position of view k in the order
        sizes = torch.arange(1, self.n_views + 1, device=device)
        return (rank[None] < sizes[:, None, None]).float()

    def _forward(self, y, views, generator=None):
        """Everything both updates need, from one batch with all views present."""
        b, k = y.shape[0], self.n_views
        masks = self.growing_masks(b, generator, y.device)                    # [K, B, K]
        mu_e, var_e = self.encode_target(y)
        z_e = self.reparam(mu_e, var_e, generator)
        z_p = torch.randn(b, self.nz, generator=generator, device=y.device, dtype=y.dtype)
        y_g = self.G(z_p)
        # H on all K nested sets at once (views repeated K times along the batch)
        rep = [v.repeat(k, *[1] * (v.dim() - 1)) for v in views]
        mu_h, var_h = self.encode_views(rep, masks.reshape(k * b, k))
        mu_h, var_h = mu_h.view(k, b, -1), var_h.view(k, b, -1)
        # one set per example for the D2 term: size drawn uniformly in 1..K
        pick = torch.randint(0, k, (b,), generator=generator, device=y.device)
        ar = torch.arange(b, device=y.device)
        mask = masks[pick, ar]
        z_h = self.reparam(mu_h[pick, ar], var_h[pick, ar], generator)
        # KL between successive sets: KL(p_H(z|v') || p_H(z|v)), v subset v'
        if k > 1:
            # H outputs variances; sum over z dims, then over the K - 1 pairs, mean over the batch (Eq. 2.2)
            kl = gaussian_kl(mu_h[1:], var_h[1:], mu_h[:-1], var_h[:-1], variance=True).sum(-1).sum(0).mean()
        else:
            kl = y.new_zeros(())
        return dict(z_e=z_e, z_p=z_p, y_g=y_g, mask=mask, z_h=z_h, kl=kl)

    def _scores(self, y, views, f, detach: bool):
        """D1 and D2 logits of the (real, fake) pairs. Real and fake go through each D as one batch, so
        batch norm sees one set of statistics (separate batches let it erase the real/fake difference)."""
        cut = (lambda t: t.detach()) if detach else (lambda t: t)
        b = y.shape[0]
        d1 = self.D1([torch.cat([y, cut(f["y_g"])])], y.new_ones(2 * b, 1), torch.cat([cut(f["z_e"]), f["z_p"]]))
        d2 = self.D2([torch.cat([v, v]) for v in views], torch.cat([f["mask"], f["mask"]]),
                     torch.cat([cut(f["z_e"]), cut(f["z_h"])]))
        return d1[:b], d1[b:], d2[:b], d2[b:]

    def discriminator_loss(self, y, views, f) -> dict:
        bce = F.binary_cross_entropy_with_logits
        real1, fake1, real2, fake2 = self._scores(y, views, f, detach=True)
        d1 = bce(real1, torch.ones_like(real1)) + bce(fake1, torch.zeros_like(fake1))
        d2 = bce(real2, torch.ones_like(real2)) + bce(fake2, torch.zeros_like(fake2))
        return {"d_loss": d1 + d2, "d1": d1.detach(), "d2": d2.detach(),
                "d1_acc": pair_accuracy(real1, fake1), "d2_acc": pair_accuracy(real2, fake2)}

    def generator_loss(self, y, views, f) -> dict:
        """Non-saturating: E, G and H try to make D call their pairs the other side's.

        D1 and D2 score here with their batch norm in eval mode (the running statistics of their own
        updates). With batch statistics, E is scored on statistics its own z feeds: inflating the variance
        of p_E(z|y) shifts them and lowers its loss, so the variance grew without bound (to ~200 in 2,500
        steps) and z_E(y) carried nothing of y for H to match (issue 16; docs/chapters/mvbigan.md).
        """
        bce = F.binary_cross_entropy_with_logits
        modes = [d.training for d in (self.D1, self.D2)]
        self.D1.eval()
        self.D2.eval()
        try:
            real1, fake1, real2, fake2 = self._scores(y, views, f, detach=False)
        finally:
            self.D1.train(modes[0])
            self.D2.train(modes[1])
        g1 = bce(real1, torch.zeros_like(real1)) + bce(fake1, torch.ones_like(fake1))
        g2 = bce(real2, torch.zeros_like(real2)) + bce(fake2, torch.ones_like(fake2))
        loss = g1 + g2 + self.lam * f["kl"]
        return {"g_loss": loss, "g1": g1.detach(), "g2": g2.detach(), "kl": f["kl"].detach()}

    def train_step(self, y, views, d_optim, g_optim, generator=None) -> dict[str, float]:
        """One step: D1 and D2 first, then E, G and H on the same batch (with the updated D)."""
        self.check_views(views, y.new_ones(y.shape[0], self.n_views))
        f = self._forward(y, views, generator)
        d = self.discriminator_loss(y, views, f)
        d_optim.zero_grad(set_to_none=True)
        d["d_loss"].backward()
        d_optim.step()
        g = self.generator_loss(y, views, f)
        g_optim.zero_grad(set_to_none=True)
        # D's gradients from this backward are discarded by the next zero_grad
        g["g_loss"].backward()
        g_optim.step()
        return {k: float(v.detach()) for k, v in {**d, **g}.items()}
