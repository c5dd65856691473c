"""Measurements that tell why MV-BiGAN samples do or do not follow their views (issue 16).

The thesis shows conditioning only as pictures (Figs 3.5-3.8). A sample that contradicts its own input is
wrong whatever its diversity, so this module measures, on a fixed batch of test examples:

- ``observed_error_k<k>``: with the first k views of a random order (fixed per example), the RMS distance
  between each sample and the target *on the pixels those views show*, averaged over samples. It must fall
  towards 0 as training goes; chance is the same distance for a sample that ignores
  the views (another test example in their place; ``observed_error_chance_k<k>``), the level of a model that has not learned to condition;
- ``inversion_error``: RMS distance between y and G(mu_E(y)): if G does not invert E, H cannot help;
- ``latent_gap`` against ``latent_spread``: RMS distance (per z dimension) between mu_H(all views) and
  mu_E(y), and between mu_E of two different examples: H is useful only when the first is well below the second;
- ``d1_acc`` / ``d2_acc``: accuracy of D1 (y, z) and D2 (v, z) on real against fake pairs (0.5: fooled).

The training log gets them every ``log_interval`` steps (the validation hook of stages/training.py), the
evaluation writes them to metrics.json, and the claims page (stages/claims.py) decides on them.
"""
from __future__ import annotations

import numpy as np
import torch

from stages.mvbigan.views import observed_pixels


def nested_mask(n_examples: int, n_views: int, k: int, seed: int, device) -> torch.Tensor:
    """[B, K] masks with the first k views of a per-example random order present (fixed by ``seed``)."""
    order = np.argsort(np.random.default_rng(seed).random((n_examples, n_views)), axis=1)
    rank = np.argsort(order, axis=1)
    return torch.from_numpy((rank < k).astype(np.float32)).to(device)


def observed_error(samples: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """samples [B, N, ...], truth and observed [B, ...] -> per example, the RMS over observed pixels of
    (sample - truth), averaged over the N samples. Examples with nothing observed give NaN."""
    b, n = samples.shape[:2]
    w = observed.reshape(b, 1, -1).double()
    sq = ((samples.reshape(b, n, -1).double() - truth.reshape(b, 1, -1).double()) ** 2 * w).sum(-1)
    return (sq / w.sum(-1)).sqrt().mean(1)


@torch.no_grad()
def diagnose(model, views_cfg: dict, y: torch.Tensor, views: list[torch.Tensor], *, n_samples: int, seed: int,
             device) -> dict[str, np.ndarray]:
    """Per-example values of every measurement above (means are the caller's: a log or a 95% interval).

    Switches the model to eval mode (batch norm on its running statistics, as at sampling time) and back.
    Draws from its own generators, so calling it never changes the training's random stream."""
    was_training = model.training
    model.eval()
    try:
        out: dict[str, np.ndarray] = {}
        b, k_max = y.shape[0], model.n_views
        for k in range(1, k_max + 1):
            mask = nested_mask(b, k_max, k, seed, device)
            observed = observed_pixels(views_cfg, views, mask)
            gen = torch.Generator(device=device).manual_seed(seed * 7919 + k)
            pred = model.predict(views, mask, n_samples, generator=gen)
            out[f"observed_error_k{k}"] = observed_error(pred, y, observed).cpu().numpy()
            # chance level: the truth of another example scored on this example's observed pixels
            out[f"observed_error_chance_k{k}"] = observed_error(y.roll(1, 0)[:, None], y, observed).cpu().numpy()
        out["inversion_error"] = model.inversion_error(y).double().cpu().numpy()
        out["latent_gap"] = model.latent_gap(y, views).double().cpu().numpy()
        out["latent_spread"] = model.latent_spread(y).double().cpu().numpy()
        out.update(discriminator_accuracies(model, y, views, seed, device))
        return out
    finally:
        model.train(was_training)


def discriminator_accuracies(model, y, views, seed: int, device) -> dict[str, np.ndarray]:
    """D1 and D2 accuracies on one set of real and fake pairs (all views present for D2)."""
    gen = torch.Generator(device=device).manual_seed(seed * 7919 + 999)
    f = model._forward(y, views, gen)
    real1, fake1, real2, fake2 = model._scores(y, views, f, detach=True)
    acc = lambda r, fk: torch.cat([r > 0, fk <= 0]).double().cpu().numpy()  # noqa: E731
    return {"d1_acc": acc(real1, fake1), "d2_acc": acc(real2, fake2)}
