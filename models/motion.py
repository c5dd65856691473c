"""Chapter 4.1 motion models on windows of joint angles, one family selected by ``kind``.

Windows are float32 [B, T, D] in (0, 1) (D = 69 on Emilya). Every kind but ``classifier`` is a sequence
auto-encoder: an encoder reads the window and gives a code c; a decoder reads [c, cond] at every step
(cond: nothing, a one-hot emotion or a style vector s) and outputs the window through a sigmoid.

    seq2seq     GRU encoder / GRU decoder, MSE [I]; generates from a full-covariance Gaussian fitted to train codes [T]
    erd         frame MLP -> 2-layer LSTM -> frame MLP (Fragkiadaki et al. 2015), code = last state [I]; same sampling
    seqvae      c ~ q(c|x) (mu, log-variance), KL to N(0, I) with a linear warm-up [I]; generates from N(0, I)
    asae        + D_c: an MLP telling codes from N(0, I) samples, the encoder fooling it (adversarial AE, A24)
    asfsae      + one-hot emotion to the decoder and D_s: an MLP predicting the emotion from c, whose loss the
                encoder maximises (Eq 4.1) so c carries no emotion; ``adverse_weight: 0`` is "ASFSAE w/o D_s"
    dasae       + a style encoder giving s (``style`` values: 3, 5 or 8) from the window, with C_s on s (the
                emotion, trained with the encoder), D_s on c and the decoder reading (c, s) [T]
    classifier  the encoder + a linear head over the emotions (selected on validation by its trainer) [T]

Losses per optimiser step (``train_step``): the discriminators (D_c, D_s) take one Adam step on detached
codes, then the encoder(s)/decoder/C_s take one on the reconstruction plus their adversarial terms.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.blocks import ModelConfigError, config_from_dict, mlp, randn

KINDS = ("seq2seq", "erd", "seqvae", "asae", "asfsae", "dasae", "classifier")
ADVERSARIAL_CODE = ("asae", "asfsae", "dasae")


class SequenceEncoder(nn.Module):
    """[B, T, D] -> [B, n_out] from the last hidden state (GRU, or the ERD's MLP + LSTM)."""

    def __init__(self, frame_dim: int, hidden: int, layers: int, n_out: int, erd: bool = False):
        super().__init__()
        self.frame_mlp = mlp(frame_dim, hidden, hidden, 2) if erd else None
        rnn = nn.LSTM if erd else nn.GRU
        self.rnn = rnn(hidden if erd else frame_dim, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frame_mlp is not None:
            x = self.frame_mlp(x)
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state
        return self.out(h[-1])


class SequenceDecoder(nn.Module):
    """[B, n_in] read at each of T steps -> [B, T, D] in (0, 1)."""

    def __init__(self, n_in: int, hidden: int, layers: int, frame_dim: int, window: int, erd: bool = False):
        super().__init__()
        self.window = window
        rnn = nn.LSTM if erd else nn.GRU
        self.rnn = rnn(n_in, hidden, layers, batch_first=True)
        self.out = mlp(hidden, hidden, frame_dim, 2) if erd else nn.Linear(hidden, frame_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(z[:, None].expand(-1, self.window, -1).contiguous())
        return torch.sigmoid(self.out(h))


class MotionModel(nn.Module):
    @classmethod
    def from_config(cls, cfg: dict) -> "MotionModel":
        return cls(**config_from_dict(cls, cfg))

    def __init__(self, kind: str, frame_dim: int = 69, window: int = 200, hidden: int = 512, layers: int = 2,
                 code: int = 64, style: int = 0, n_emotions: int = 8, disc_hidden: int = 256,
                 adversarial_weight: float = 1.0, adverse_weight: float = 1.0, style_class_weight: float = 1.0,
                 kl_weight: float = 1.0, kl_warmup: int = 1000):
        super().__init__()
        if kind not in KINDS:
            raise ModelConfigError(f"unknown motion model kind '{kind}'; known: {', '.join(KINDS)}")
        if kind == "dasae" and style < 1:
            raise ModelConfigError("kind dasae needs style >= 1 (the size of s: 3, 5 or 8 in Table 4.1)")
        self.kind, self.code, self.style, self.n_emotions, self.window = kind, code, style, n_emotions, window
        self.adversarial_weight, self.adverse_weight = adversarial_weight, adverse_weight
        self.style_class_weight, self.kl_weight, self.kl_warmup = style_class_weight, kl_weight, kl_warmup
        erd = kind == "erd"
        self.encoder = SequenceEncoder(frame_dim, hidden, layers, 2 * code if kind == "seqvae" else code, erd)
        if kind == "classifier":
            self.head = nn.Linear(code, n_emotions)
            return
        cond = {"asfsae": n_emotions, "dasae": style}.get(kind, 0)
        self.decoder = SequenceDecoder(code + cond, hidden, layers, frame_dim, window, erd)
        if kind == "dasae":
            self.style_encoder = SequenceEncoder(frame_dim, hidden, layers, style)
            self.style_classifier = nn.Linear(style, n_emotions)                    # C_s
        if kind in ADVERSARIAL_CODE:
            self.code_discriminator = mlp(code, disc_hidden, 1, 3)                  # D_c
        if self.has_adverse:
            self.emotion_discriminator = mlp(code, disc_hidden, n_emotions, 3)      # D_s
        # Sampling state, fitted after training (stages/motion/train.py) and saved with the weights.
        self.register_buffer("code_mean", torch.zeros(code))
        self.register_buffer("code_chol", torch.eye(code))
        self.register_buffer("emotion_freq", torch.full((n_emotions,), 1.0 / n_emotions))

    # ------------------------------------------------------------------------------------------- structure
    @property
    def has_adverse(self) -> bool:
        return (self.kind == "asfsae" and self.adverse_weight > 0) or self.kind == "dasae"

    @property
    def conditional(self) -> bool:
        return self.kind in ("asfsae", "dasae")

    @property
    def fitted_gaussian(self) -> bool:
        return self.kind in ("seq2seq", "erd")

    def discriminator_parameters(self) -> list[nn.Parameter]:
        mods = [getattr(self, n) for n in ("code_discriminator", "emotion_discriminator") if hasattr(self, n)]
        return [p for m in mods for p in m.parameters()]

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        skip = {id(p) for p in self.discriminator_parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    # ------------------------------------------------------------------------------------------- forward
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code c of each window (the posterior mean for seqvae)."""
        out = self.encoder(x)
        return out[:, :self.code] if self.kind == "seqvae" else out

    def style_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.style_encoder(x)

    def condition(self, emotion: torch.Tensor | None = None, style: torch.Tensor | None = None) -> torch.Tensor | None:
        if self.kind == "asfsae":
            return F.one_hot(emotion, self.n_emotions).float()
        if self.kind == "dasae":
            return style
        return None

    def decode(self, c: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(c if cond is None else torch.cat([c, cond.to(c.dtype)], dim=1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = randn((n, self.code), self.code_mean, generator)
        return self.code_mean + z @ self.code_chol.T if self.fitted_gaussian else z

    def sample_emotions(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Emotion labels drawn from the train frequencies (ASFSAE's generation)."""
        return torch.multinomial(self.emotion_freq.cpu(), n, replacement=True, generator=generator).to(
            self.code_mean.device)

    @torch.no_grad()
    def fit_code_gaussian(self, codes: torch.Tensor, emotions: torch.Tensor) -> None:
        """Mean and Cholesky factor of the train codes (full covariance, jittered to stay positive definite)."""
        codes = codes.double()
        mean = codes.mean(0)
        cov = torch.cov(codes.T).reshape(self.code, self.code) + 1e-6 * torch.eye(self.code, dtype=codes.dtype,
                                                                                  device=codes.device)
        self.code_mean.copy_(mean.float())
        self.code_chol.copy_(torch.linalg.cholesky(cov).float())
        counts = torch.bincount(emotions, minlength=self.n_emotions).float()
        self.emotion_freq.copy_(counts / counts.sum())

    # ------------------------------------------------------------------------------------------- losses
    def losses(self, x: torch.Tensor, emotion: torch.Tensor, step: int = 0,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The autoencoder's (or the classifier's) loss terms; ``total`` is what its optimiser minimises."""
        if self.kind == "classifier":
            ce = F.cross_entropy(self.classify(x), emotion)
            return {"total": ce, "ce": ce}
        out: dict[str, torch.Tensor] = {}
        h = self.encoder(x)
        if self.kind == "seqvae":
            mu, logvar = h[:, :self.code], h[:, self.code:]
            c = mu + randn(mu.shape, mu, generator) * (0.5 * logvar).exp()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
            # Reconstruction is a per-value mean: the KL is put on the same per-value scale [I].
            out["kl"] = kl
            warm = min(1.0, step / self.kl_warmup) if self.kl_warmup else 1.0
            kl_term = self.kl_weight * warm * kl / x[0].numel()
        else:
            c, kl_term = h, 0.0
        style = self.style_of(x) if self.kind == "dasae" else None
        recon = F.mse_loss(self.decode(c, self.condition(emotion, style)), x)
        total = recon + kl_term
        out["recon"] = recon
        if self.kind in ADVERSARIAL_CODE:
            fool = F.binary_cross_entropy_with_logits(self.code_discriminator(c), torch.ones_like(c[:, :1]))
            out["adv_code"] = fool
            total = total + self.adversarial_weight * fool
        if self.has_adverse:   # Eq 4.1: the encoder maximises D_s's loss on c
            adverse = F.cross_entropy(self.emotion_discriminator(c), emotion)
            out["adverse"] = adverse
            total = total - self.adverse_weight * adverse
        if self.kind == "dasae":
            style_ce = F.cross_entropy(self.style_classifier(style), emotion)
            out["style_ce"] = style_ce
            total = total + self.style_class_weight * style_ce
        out["total"] = total
        out["code"] = c
        return out

    def discriminator_loss(self, c: torch.Tensor, emotion: torch.Tensor,
                           generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """D_c (prior samples real, codes fake) and D_s (emotion from the code) on detached codes."""
        c = c.detach()
        out, total = {}, c.new_zeros(())
        if self.kind in ADVERSARIAL_CODE:
            real = self.code_discriminator(randn(c.shape, c, generator))
            fake = self.code_discriminator(c)
            d_c = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                   + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            out["d_code"], total = d_c, total + d_c
        if self.has_adverse:
            d_s = F.cross_entropy(self.emotion_discriminator(c), emotion)
            out["d_emotion"], total = d_s, total + d_s
        out["total"] = total
        return out

    def train_step(self, x: torch.Tensor, emotion: torch.Tensor, ae_optim: torch.optim.Optimizer,
                   d_optim: torch.optim.Optimizer | None, step: int = 0,
                   generator: torch.Generator | None = None) -> dict[str, float]:
        logs: dict[str, float] = {}
        if d_optim is not None and self.discriminator_parameters():
            with torch.no_grad():
                c = self.encode(x) if self.kind != "seqvae" else self.encoder(x)[:, :self.code]
            d = self.discriminator_loss(c, emotion, generator)
            d_optim.zero_grad(set_to_none=True)
            d["total"].backward()
            d_optim.step()
            logs.update({k: float(v.detach()) for k, v in d.items() if k != "total"})
        terms = self.losses(x, emotion, step, generator)
        ae_optim.zero_grad(set_to_none=True)
        terms["total"].backward()
        ae_optim.step()
        logs.update({k: float(v.detach()) for k, v in terms.items() if k != "code"})
        return logs
