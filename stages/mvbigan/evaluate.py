"""What Figs 3.5 and 3.6 only show, measured (called by ``python -m stages.evaluate``).

For each test example and each number k = 1..K of provided views (the first k of a random order of
the views, fixed per example by the protocol seed), draw N predictions from p_H(z | v) and score:

- diversity: the mean over the N(N-1)/2 pairs of samples of their per-pixel RMS distance;
- best-of-N error: the smallest per-pixel RMS distance of a sample to the ground truth.

Both are averaged over test examples with a 95% interval (1.96 std / sqrt(n)), and so are the
conditioning diagnostics of stages/mvbigan/diagnostics.py (observed-pixel error per k and its chance level,
BiGAN inversion error, H-to-E latent gap and spread, D1 / D2 accuracies), on the same examples and views
(observed-pixel error averaged over up to DIAG_SAMPLES samples per example). With the KL term the
diversity should fall as views are added; without it (lambda = 0) nothing ties p_H(z|v) for nested sets.
Writes results/<profile>/<experiment>/metrics.json in the common format (columns diversity_k<k> and
best_error_k<k>).
"""
from __future__ import annotations

import numpy as np
import torch

from stages import paths
from stages.errors import write_json_atomic
from stages.metrics.protocol import mean_ci95
from stages.mvbigan.diagnostics import diagnose, nested_mask
from stages.mvbigan.views import ViewData, make_views
from stages.registry import experiment_config
from stages.checkpoints import load_model
from stages.runtime import select_device, step_generator

DIAG_SAMPLES = 10   # samples per example for the observed-pixel error (enough for its mean; N can be 100)


def diversity_and_error(samples: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """samples [B, N, ...], truth [B, ...] -> per-example mean pairwise and best-of-N RMS distances."""
    b, n = samples.shape[:2]
    flat = samples.reshape(b, n, -1).double()
    d = flat.shape[-1]
    pair = torch.cdist(flat, flat) / d ** 0.5                           # [B, N, N]
    iu = torch.triu_indices(n, n, offset=1)
    diversity = pair[:, iu[0], iu[1]].mean(dim=1)
    err = ((flat - truth.reshape(b, 1, -1).double()) ** 2).mean(-1).sqrt().min(dim=1).values
    return diversity, err


@torch.no_grad()
def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto = cfg["protocol"]
    device = select_device(args.device)
    model, ckpt = load_model(paths.checkpoint(profile, args.experiment), device)
    data = ViewData(cfg["dataset"], profile, ckpt["views"])
    n = min(proto["n_examples"], len(data.test))
    idx = np.arange(n)
    y, attrs = data.test_examples(idx, device)
    views = make_views(ckpt["views"], y, attrs, generator=step_generator(proto["seed"], 0, device))
    metrics = {}
    for k in range(1, model.n_views + 1):
        mask = nested_mask(n, model.n_views, k, proto["seed"], device)
        div, err = [], []
        for s in range(0, n, proto["batch_size"]):
            sl = slice(s, s + proto["batch_size"])
            pred = model.predict([v[sl] for v in views], mask[sl], proto["n_samples"],
                                 generator=step_generator(proto["seed"], 1000 * k + s, device))
            d, e = diversity_and_error(pred, y[sl])
            div.append(d.cpu())
            err.append(e.cpu())
        for name, vals in ((f"diversity_k{k}", div), (f"best_error_k{k}", err)):
            mean, half = mean_ci95(torch.cat(vals).numpy(), name)
            metrics[name] = {"status": "ok", "mean": mean, "ci95": half, "n": n}
    # one batch: the chance level and latent spread pair each example with another one of the batch
    diag = diagnose(model, ckpt["views"], y, views, n_samples=min(proto["n_samples"], DIAG_SAMPLES),
                    seed=proto["seed"], device=device)
    for key, vals in diag.items():
        mean, half = mean_ci95(vals[np.isfinite(vals)], key)
        metrics[key] = {"status": "ok", "mean": mean, "ci95": half, "n": int(np.isfinite(vals).sum())}
    out = {"experiment": args.experiment, "profile": profile, "model": cfg["family"], "dataset": cfg["dataset"],
           "report": cfg["report"], "lambda": ckpt["model_config"]["lam"],
           "protocol": {"n_examples": n, "n_samples": proto["n_samples"], "n_views": model.n_views,
                        "seed": proto["seed"], "distance": "per-pixel RMS, images in [0, 1]"},
           "metrics": metrics}
    write_json_atomic(paths.metrics(profile, args.experiment), out)
    print(f"wrote {paths.metrics(profile, args.experiment)}: "
          + ", ".join(f"{k} {v['mean']:.4f}" for k, v in metrics.items()))
    return 0
