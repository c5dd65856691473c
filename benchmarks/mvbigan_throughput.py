"""MV-BiGAN throughput (JSON on stdout): training iterations/s of the MNIST (MLP) and CelebA (conv)
variants, and sampling throughput (predictions/s from a set of views), at smoke and paper sizes.

    python benchmarks/mvbigan_throughput.py [--device cpu|cuda] [--steps 3] [--profiles smoke paper]

Random inputs of the right shapes are used, so no dataset is needed.
"""
from __future__ import annotations

import argparse

from _common import ROOT, emit, timed

import torch  # noqa: E402

from models.mvbigan import MVBiGAN  # noqa: E402
from stages.mvbigan.views import make_views, specs  # noqa: E402
from stages.registry import dataset_config, experiment_config, load_params  # noqa: E402
from stages.runtime import autocast, step_generator  # noqa: E402

EXPERIMENTS = ("mvbigan-mnist-4views", "mvbigan-celeba-attr-face")


def build(exp: str, profile: str, device: torch.device):
    params = load_params(ROOT / "params.yaml")
    cfg = experiment_config(params, exp, profile)
    size = dataset_config(params, "celeba", profile)["image_size"] if cfg["dataset"] == "celeba" else None
    target, views = specs(cfg["model"]["views"], size)
    m = cfg["model"]
    torch.manual_seed(0)
    model = MVBiGAN(target, views, nz=m["nz"], hidden=m["hidden"], agg=m["agg"], nf=m.get("nf", 64), lam=m["lam"])
    return cfg, model.to(device), target, size


def _target(target: dict, b: int, device):
    shape = (target["dim"],) if target["kind"] == "vector" else (target["channels"], target["size"], target["size"])
    return torch.rand(b, *shape, device=device)


def measure_train(exp: str, profile: str, device: torch.device, steps: int) -> dict:
    cfg, model, target, _ = build(exp, profile, device)
    tr = cfg["train"]
    model.train()
    d_opt = torch.optim.Adam(model.discriminator_parameters(), lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]))
    g_opt = torch.optim.Adam(model.generator_parameters(), lr=tr["lr"], betas=(tr["beta1"], tr["beta2"]))
    y = _target(target, tr["batch_size"], device)
    attrs = torch.randint(0, 2, (tr["batch_size"], 40), device=device)
    views = make_views(cfg["model"]["views"], y, attrs)

    def step(i=[0]):
        with autocast(device):
            model.train_step(y, views, d_opt, g_opt, step_generator(0, i[0], device))
        i[0] += 1
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = timed(lambda: [step() for _ in range(steps)], warmup=1, repeat=2) / steps
    return {"experiment": exp, "profile": profile, "what": "train", "batch_size": tr["batch_size"],
            "it_per_s": round(1.0 / seconds, 3), "examples_per_s": round(tr["batch_size"] / seconds, 1)}


@torch.no_grad()
def measure_sampling(exp: str, profile: str, device: torch.device, n_examples: int = 16, n_samples: int = 16) -> dict:
    cfg, model, target, _ = build(exp, profile, device)
    model.eval()
    y = _target(target, n_examples, device)
    views = make_views(cfg["model"]["views"], y, torch.randint(0, 2, (n_examples, 40), device=device))
    mask = torch.ones(n_examples, len(views), device=device)

    def run():
        with autocast(device):
            model.predict(views, mask, n_samples, step_generator(0, 0, device))
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = timed(run, warmup=1, repeat=3)
    return {"experiment": exp, "profile": profile, "what": "sample", "predictions": n_examples * n_samples,
            "samples_per_s": round(n_examples * n_samples / seconds, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--profiles", nargs="+", default=["smoke", "paper"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the profile's torch_threads)")
    args = p.parse_args()
    device = torch.device(args.device)
    profiles = load_params(ROOT / "params.yaml")["profiles"]
    default_threads = torch.get_num_threads()
    results = []
    for prof in args.profiles:
        # the profile's torch_threads (smoke: 1, as its stages run), else torch's default
        threads = args.threads or profiles[prof].get("torch_threads") or default_threads
        torch.set_num_threads(threads)
        for exp in EXPERIMENTS:
            for r in (measure_train(exp, prof, device, args.steps), measure_sampling(exp, prof, device)):
                results.append({**r, "torch_threads": threads})
    emit("mvbigan_throughput", results)


if __name__ == "__main__":
    main()
