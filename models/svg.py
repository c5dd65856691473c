"""SVG-LP (Denton & Fergus 2018): the SM-MNIST baseline that the thesis retrained (Table 3.2).

This module holds the SVG model class and its Gaussian / predictor LSTMs; encoders/decoders, the DCGAN
initialiser and Gaussians come from ``models.blocks``.

Per step t = 2..T, with frame codes h_t = enc(x_t) (DCGAN, tanh, ``g_dim``)::

    z_t ~ q(z_t | x_{1:t})           posterior: Linear -> LSTM(rnn_size) -> (mu, logvar), on h_t
    p(z_t | x_{1:t-1})               learned prior: same architecture, on h_{t-1}
    g_t = predictor(h_{t-1}, z_t)    Linear -> LSTM x predictor_rnn_layers -> Linear -> tanh
    x_hat_t = dec(g_t, skip maps of one conditioning frame)

Loss: sum_t MSE(x_hat_t, x_t) (mean over batch and pixels) + beta * sum_t KL(q || p) (summed over z dims, divided
by the batch size). Training uses teacher forcing (encoder applied to ground-truth previous frames), so the whole
sequence is processed with one LSTM call per network; prediction feeds decoded frames back autoregressively.

Documented choices:

* Skip frame: in the reference training / generation loops the skip maps are refreshed while ``i < n_past`` from
  the *input* frame x[i-1], so the decoder always receives the maps of conditioning frame ``n_past - 1``
  (1-indexed: the penultimate conditioning frame), not of the last one as the paper's text suggests.
  ``skip_frame=-2`` (default) reproduces that; ``skip_frame=-1`` uses the last conditioning frame.
* BatchNorm at test time: the reference generate_svg_lp.py leaves the encoder/decoder in train mode (issue #15),
  so test predictions use batch statistics. That bug is **not** reproduced: callers put the model in ``eval()``.
* Conditioning frames at prediction use posterior samples (as generate_svg_lp.py), future frames prior samples.
* Init as the reference: conv/linear N(0, 0.02) with zero bias, BatchNorm N(1, 0.02); LSTMs PyTorch defaults.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from models.blocks import (DiagGaussian, ModelConfigError, config_from_dict, init_normal_, make_decoder,
                           make_encoder)

__all__ = ["SVG"]

LSTMState = tuple[Tensor, Tensor]


class _GaussianLSTM(nn.Module):
    """Linear embedding -> stacked LSTM -> (mu, logvar) heads; the posterior and the learned prior."""

    def __init__(self, n_in: int, n_out: int, hidden: int, n_layers: int):
        super().__init__()
        self.embed = nn.Linear(n_in, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=n_layers, batch_first=True)
        self.mu = nn.Linear(hidden, n_out)
        self.logvar = nn.Linear(hidden, n_out)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[DiagGaussian, LSTMState]:
        h, state = self.lstm(self.embed(x), state)
        return DiagGaussian.from_logvar(self.mu(h), self.logvar(h)), state


class _PredictorLSTM(nn.Module):
    """Linear embedding -> stacked LSTM -> Linear -> tanh; the deterministic frame predictor."""

    def __init__(self, n_in: int, n_out: int, hidden: int, n_layers: int):
        super().__init__()
        self.embed = nn.Linear(n_in, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=n_layers, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, n_out), nn.Tanh())

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        h, state = self.lstm(self.embed(x), state)
        return self.out(h), state


class SVG(nn.Module):
    """SVG-LP with the SM-MNIST hyper-parameters of the SVG README as defaults.

    Video inputs are float tensors [B, T, C, H, W] with values in [0, 1].
    """

    def __init__(self, *, channels: int = 1, g_dim: int = 128, z_dim: int = 10, rnn_size: int = 256,
                 predictor_rnn_layers: int = 2, posterior_rnn_layers: int = 1, prior_rnn_layers: int = 1,
                 beta: float = 1e-4, nf: int = 64, n_past: int = 5, arch: str = "dcgan", image_size: int = 64,
                 skip_frame: int = -2):
        super().__init__()
        if n_past < 1:
            raise ModelConfigError(f"n_past must be >= 1, got {n_past}")
        if skip_frame >= 0:
            raise ModelConfigError(f"skip_frame is a negative index into the conditioning frames, got {skip_frame}")
        self.config = dict(channels=channels, g_dim=g_dim, z_dim=z_dim, rnn_size=rnn_size,
                           predictor_rnn_layers=predictor_rnn_layers, posterior_rnn_layers=posterior_rnn_layers,
                           prior_rnn_layers=prior_rnn_layers, beta=beta, nf=nf, n_past=n_past, arch=arch,
                           image_size=image_size, skip_frame=skip_frame)
        self.g_dim, self.z_dim, self.beta, self.n_past, self.skip_frame = g_dim, z_dim, beta, n_past, skip_frame

        self.encoder = make_encoder(arch, channels, g_dim, nf, image_size)
        self.decoder = make_decoder(arch, channels, g_dim, nf, image_size, skip=True, out_bias=True)
        self.predictor = _PredictorLSTM(g_dim + z_dim, g_dim, rnn_size, predictor_rnn_layers)
        self.posterior = _GaussianLSTM(g_dim, z_dim, rnn_size, posterior_rnn_layers)
        self.prior = _GaussianLSTM(g_dim, z_dim, rnn_size, prior_rnn_layers)
        init_normal_(self, 0.02)  # touches conv / linear / BatchNorm only: LSTMs keep their default init

    @classmethod
    def from_config(cls, cfg: dict) -> "SVG":
        """Build from a config mapping; unknown keys raise a ValueError (ModelConfigError) naming them."""
        return cls(**config_from_dict(cls, cfg))

    # ------------------------------------------------------------------------------------------------------------
    def _skip_index(self, n_cond: int) -> int:
        """Frame whose encoder maps feed the decoder when ``n_cond`` frames condition the prediction."""
        return max(n_cond + self.skip_frame, 0)

    def _encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, t = x.shape[:2]
        codes, maps = self.encoder(x.flatten(0, 1))
        return codes.unflatten(0, (b, t)), [m.unflatten(0, (b, t)) for m in maps]

    def _decode(self, g: Tensor, skip_maps: list[Tensor]) -> Tensor:
        """Frames [B, T, C, H, W] from predictor outputs g [B, T, g_dim] and one frame's maps per row."""
        b, t = g.shape[:2]
        # One frame's maps per clip, shared by its t frames (the decoder computes their term once per clip).
        return self.decoder(g.flatten(0, 1), skip_maps, repeats=t).unflatten(0, (b, t))

    def _teacher_forced(self, x: Tensor, generator: torch.Generator | None, sample: bool):
        """Posterior pass over x with ground-truth inputs: (x_hat of frames 2..T, q, p)."""
        t = x.shape[1]
        if t < 2:
            raise ValueError(f"SVG needs at least 2 frames, got {t}")
        codes, maps = self._encode(x)
        skip_maps = [m[:, min(self._skip_index(self.n_past), t - 1)] for m in maps]
        q, _ = self.posterior(codes[:, 1:])
        p, _ = self.prior(codes[:, :-1])
        z = q.rsample(generator) if sample else q.mean
        g, _ = self.predictor(torch.cat([codes[:, :-1], z], dim=-1))
        return self._decode(g, skip_maps), q, p

    def training_losses(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """SVG-LP objective of a batch: "loss" = "mse" + beta * "kl" (see module docstring)."""
        x_hat, q, p = self._teacher_forced(x, generator, sample=True)
        mse = (x_hat - x[:, 1:]).pow(2).flatten(2).mean(dim=(0, 2)).sum()  # per-step MSELoss, summed over steps
        kl = q.kl(p).sum() / x.shape[0]
        return {"loss": mse + self.beta * kl, "mse": mse, "kl": kl}

    def predict(self, x_cond: Tensor, n_future: int, generator: torch.Generator | None = None) -> Tensor:
        """One sampled future [B, n_future, C, H, W] in [0, 1] per batch row (repeat rows for N samples).

        As generate_svg_lp.py: the LSTMs are first run over the conditioning frames with posterior z, then each
        future frame is predicted with a prior z from the code of the previous (ground-truth, then generated)
        frame. Call ``model.eval()`` first.
        """
        b, t = x_cond.shape[:2]
        codes, maps = self._encode(x_cond)
        skip_maps = [m[:, self._skip_index(t)] for m in maps]
        prior_state = pred_state = None
        if t > 1:
            z = self.posterior(codes[:, 1:])[0].rsample(generator)
            _, prior_state = self.prior(codes[:, :-1])
            _, pred_state = self.predictor(torch.cat([codes[:, :-1], z], dim=-1), None)
        h = codes[:, -1:]
        frames = []
        for i in range(n_future):  # autoregressive: each frame is re-encoded to predict the next one
            p, prior_state = self.prior(h, prior_state)
            g, pred_state = self.predictor(torch.cat([h, p.rsample(generator)], dim=-1), pred_state)
            frame = self._decode(g, skip_maps)
            frames.append(frame)
            if i + 1 < n_future:
                h = self.encoder(frame[:, 0])[0][:, None]
        if not frames:
            return x_cond.new_zeros(b, 0, *x_cond.shape[2:])
        return torch.cat(frames, dim=1).clamp(0, 1)

    def reconstruct(self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Teacher-forced posterior reconstruction [B, T, C, H, W]; frame 1 is copied from x (SVG never decodes
        it). Posterior means by default, samples with ``sample=True``."""
        x_hat, _, _ = self._teacher_forced(x, generator, sample=sample)
        return torch.cat([x[:, :1], x_hat.clamp(0, 1)], dim=1)
