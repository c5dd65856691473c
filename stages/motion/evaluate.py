"""Table 4.1's metrics of one motion model (``python -m stages.evaluate --experiment motion-asfsae``).

Generation [T]: c ~ N(0, I) (Seq2Seq and ERD: the full-covariance Gaussian fitted to their train codes);
ASFSAE's emotion labels drawn from the train frequencies; DASAE's style s taken from a random train window
("extract s from another sequence").

- Parzen log-likelihood [T]: ``n_generated`` generated windows against ``n_test`` random test windows,
  flattened; sigma chosen on ``n_val`` validation windows over a log grid (Goodfellow et al. 2014) [I];
  ``runs`` runs, each a fresh draw of both sets: mean ± std.
- G2T / T2G [T]: generated windows against every validation + test window (or ``n_real`` of them),
  distance ||x - y|| / sqrt(T) [I] (stages/metrics/nearest.py).
- Transfer accuracy [T]: each test window gets a target emotion drawn among the others [I]; ASFSAE decodes
  (c(x), target), DASAE (c(x), s of a random test window of that emotion) [I]; the emotion classifier
  (its own experiment, ``protocol.classifier``) scores the outputs. The emotion classifier's own evaluation
  reports its accuracy on the real test windows instead.
"""
from __future__ import annotations

import numpy as np
import torch

from stages import paths
from stages.checkpoints import load_model
from stages.errors import ConfigError, write_json_atomic
from stages.metrics.nearest import g2t_t2g
from stages.metrics.parzen import choose_sigma, parzen_log_likelihood, sigma_grid
from stages.motion.data import EMOTION, MotionData
from stages.registry import experiment_config
from stages.runtime import select_device

NOT_CONDITIONAL = "the model has no emotion input and cannot transfer one (the thesis prints a dash)"


def generate(model, data: MotionData, n: int, seed: int, batch: int, device) -> torch.Tensor:
    """[n, T, D] generated windows (CPU), reproducible from ``seed``."""
    return torch.cat(list(generate_batches(model, data, n, seed, batch, device)))


@torch.no_grad()
def generate_batches(model, data: MotionData, n: int, seed: int, batch: int, device):
    """The windows of ``generate``, batch by batch (a Parzen run streams them: never all in memory)."""
    gen = torch.Generator().manual_seed(seed)
    for a in range(0, n, batch):
        b = min(batch, n - a)
        c = model.sample_codes(b, gen)
        cond = None
        if model.kind == "asfsae":
            cond = model.condition(model.sample_emotions(b, gen))
        elif model.kind == "dasae":
            idx = torch.randint(data.count("train"), (b,), generator=gen).numpy()
            cond = model.style_of(data.windows("train", idx).to(device))
        yield model.decode(c, cond).cpu()


def _random_windows(data: MotionData, split: str, n: int, rng: np.random.Generator) -> torch.Tensor:
    return data.windows(split, rng.choice(data.count(split), n, replace=False))


def parzen(model, data: MotionData, p: dict, seed: int, batch: int, device) -> tuple[dict, dict]:
    n_gen = p["n_generated"]
    n_test = data.require("test", p["n_test"], "protocol parzen.n_test")
    n_val = data.require("val", p["n_val"], "protocol parzen.n_val")
    rng = np.random.default_rng(seed)
    grid = sigma_grid(p["sigma_low"], p["sigma_high"], p["sigma_count"])
    sigma, scores = choose_sigma(_random_windows(data, "val", n_val, rng),
                                 generate_batches(model, data, n_gen, seed, batch, device), grid, device=device)
    runs = [float(parzen_log_likelihood(_random_windows(data, "test", n_test, rng),
                                        generate_batches(model, data, n_gen, seed + 1 + r, batch, device), [sigma],
                                        device=device)[0]) for r in range(p["runs"])]
    entry = {"status": "ok", "mean": float(np.mean(runs)), "ci95": float(np.std(runs)), "n": n_test, "runs": runs}
    return entry, {"sigma": sigma, "sigma_grid": grid.tolist(), "sigma_val_scores": scores.tolist()}


def nearest(model, data: MotionData, p: dict, seed: int, batch: int, device) -> tuple[dict, dict]:
    real = torch.cat([data.windows(s, np.arange(data.count(s))) for s in ("val", "test")])
    if p.get("n_real"):
        if p["n_real"] > len(real):
            raise ConfigError(f"protocol nearest.n_real = {p['n_real']} but validation + test hold {len(real)} "
                              f"windows: lower nearest.n_real.")
        real = real[np.random.default_rng(seed).choice(len(real), p["n_real"], replace=False)]
    fake = generate(model, data, p["n_generated"], seed + 10_000, batch, device)
    g2t, t2g = g2t_t2g(fake, real, frames=data.window, device=device)
    return ({"G2T_mean_min_distance": {"status": "ok", "mean": g2t, "ci95": None, "n": len(fake)},
             "T2G_mean_min_distance": {"status": "ok", "mean": t2g, "ci95": None, "n": len(real)}},
            {"n_generated": len(fake), "n_real": len(real)})


def exemplars_of(labels: np.ndarray, targets: np.ndarray, fallback: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each target emotion, the index of a random window with that label (``fallback`` where none has it)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=int(targets.max(initial=0)) + 1)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = counts[targets]
    pick = first[targets] + np.floor(rng.random(len(targets)) * np.maximum(n, 1)).astype(np.int64)
    return np.where(n > 0, order[np.minimum(pick, len(order) - 1)], fallback)


@torch.no_grad()
def transfer_accuracy(model, classifier, data: MotionData, seed: int, batch: int, device) -> tuple[float, int]:
    """Fraction of transferred test windows the classifier gives the target emotion."""
    n_emotions = len(data.emotions)
    rng = np.random.default_rng(seed)
    n = data.count("test")
    source = data.labels["test"][:, EMOTION]
    target = (source + rng.integers(1, n_emotions, n)) % n_emotions          # another emotion, uniformly
    exemplar = exemplars_of(source, target, np.arange(n), rng)                # DASAE's style source
    correct = 0
    for a in range(0, n, batch):
        idx = np.arange(a, min(a + batch, n))
        x, tgt = data.windows("test", idx).to(device), torch.as_tensor(target[idx]).to(device)
        style = model.style_of(data.windows("test", exemplar[idx]).to(device)) if model.kind == "dasae" else None
        out = model.decode(model.encode(x), model.condition(tgt, style))
        correct += int((classifier.classify(out).argmax(1) == tgt).sum())
    return correct / n, n


@torch.no_grad()
def classifier_accuracy(model, data: MotionData, batch: int, device) -> float:
    n = data.count("test")
    hits = sum(int((model.classify(data.windows("test", np.arange(a, min(a + batch, n))).to(device)).argmax(1)
                    == data.emotion("test", np.arange(a, min(a + batch, n))).to(device)).sum())
               for a in range(0, n, batch))
    return hits / n


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto = cfg.get("protocol")
    if proto is None:
        raise ConfigError(f"experiments.{args.experiment} has no protocol: add `protocol: motion-...` to evaluate it.")
    device = select_device(args.device)
    torch.manual_seed(proto["seed"])
    model, _ = load_model(paths.checkpoint(profile, args.experiment), device)
    data = MotionData(cfg["dataset"], profile)
    batch, seed = proto["batch_size"], proto["seed"]
    info = {"windows": {s: data.count(s) for s in ("train", "val", "test")}, "window": data.window,
            "frame_rate": float(data.meta["frame_rate"])}
    if model.kind == "classifier":
        acc = classifier_accuracy(model, data, batch, device)
        metrics = {"emotion_classification_accuracy_percent": {"status": "ok", "mean": 100 * acc, "ci95": None,
                                                                "n": data.count("test")}}
    else:
        ll, parzen_info = parzen(model, data, proto["parzen"], seed, batch, device)
        near, near_info = nearest(model, data, proto["nearest"], seed, batch, device)
        metrics = {"estimated_log_likelihood_parzen": ll, **near}
        info.update(spread="std", runs=proto["parzen"]["runs"], parzen=parzen_info, nearest=near_info)
        if model.conditional:
            classifier, _ = load_model(paths.checkpoint(profile, proto["classifier"]), device)
            acc, n = transfer_accuracy(model, classifier, data, seed, batch, device)
            metrics["emotion_classification_accuracy_percent"] = {"status": "ok", "mean": 100 * acc, "ci95": None,
                                                                  "n": n}
        else:
            metrics["emotion_classification_accuracy_percent"] = {"status": "not_reported", "reason": NOT_CONDITIONAL}
    out = {"experiment": args.experiment, "profile": profile, "model": cfg["family"], "dataset": cfg["dataset"],
           "report": cfg["report"], "kind": model.kind, "protocol": info, "metrics": metrics}
    write_json_atomic(paths.metrics(profile, args.experiment), out)
    print(f"wrote {paths.metrics(profile, args.experiment)}: "
          + ", ".join(f"{k} {v['mean']:.4g}" for k, v in metrics.items() if v["status"] == "ok"))
    return 0
