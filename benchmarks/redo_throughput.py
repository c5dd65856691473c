"""ReDO training seconds per iteration at the authors' Flowers configuration, beside theirs (JSON on stdout).

    python benchmarks/redo_throughput.py [--threads 2] [--batch 4] [--variants plain channels_last] [--repeat 3]
    python benchmarks/redo_throughput.py --authors PATH/TO/ReDO [--repeat 7]

The configuration is the paper-released redo-flowers model (128x128, released widths: F nfM 64, G_k nfX
32, D and delta nf 64 -> 1024; 93.3 M numbers), float32, batch 4, on the CPU with 2 threads: the issue's
side-by-side measurement, where the authors' train.py iteration took 10.6 s on the 2-core reference machine
(target: <= 8.5 s, 1.25x faster). One iteration = one step of F, the G_k and delta on the n redrawn
composites, then one D step on a real batch against the composites redrawn by the updated F and G_k
(``stages.redo.train.train_step``, as the train stage runs it). Variants: ``plain`` (contiguous tensors),
``channels_last`` (NHWC weights and inputs), ``compile`` (``torch.compile`` of the four networks; slow to
warm up). The load average is printed with the numbers: on a shared machine they are only as good as it is
quiet. ``--segment`` adds F's segmentation throughput (images/s, no autograd). ``--allocator system`` runs
without the stages' allocator setting (stages/allocator.py).

The 10.6 s above was measured when the issue was filed; the same machine has since timed their iteration at
16.7-18.9 s. With ``--authors PATH`` (a clone of github.com/mickaelChen/ReDO) the benchmark times their
iteration itself, side by side with ours, each in its own process (benchmarks/_sidebyside.py): their networks
from their models.py, and the loop body of their train.py (G step on the composites with the z
reconstruction, then the D step on composites redrawn under no_grad, hinge loss), with glibc's default
allocator as their script runs. One change: their Adam betas ``(0, 0.9)`` are written ``(0.0, 0.9)``, which
torch >= 2.6 requires.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from _common import ROOT, emit, timed
import _sidebyside as sidebyside

import torch  # noqa: E402

from models.gan_blocks import skip_init  # noqa: E402
from models.redo import ReDO  # noqa: E402
from stages.allocator import retain_freed_memory  # noqa: E402
from stages.redo.train import build_optimisers, train_step  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402

AUTHORS_S_PER_IT = 10.6   # their train.py, Flowers, 128x128, batch 4, float32, 2 threads (issue 13, at filing)
TARGET_SPEEDUP = 1.25


def build(cfg: dict, variant: str):
    torch.manual_seed(0)
    with skip_init():   # timing only: the orthogonal init of 93 M weights takes ~30 s and changes no cost
        model = ReDO.from_config(cfg["model"]).train()
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    if variant == "compile":
        for name in ("mask_net", "disc", "z_encoder"):
            setattr(model, name, torch.compile(getattr(model, name)))
        model.generators = torch.nn.ModuleList(torch.compile(g) for g in model.generators)
    return model


def our_iteration(cfg: dict, batch: int, variant: str = "plain"):
    """One iteration of our train stage (``stages.redo.train.train_step``) on a fixed batch."""
    model = build(cfg, variant)
    optims = build_optimisers(model, cfg["train"])
    size = cfg["model"]["image_size"]
    g = torch.Generator().manual_seed(0)
    x, real = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1 for _ in range(2))
    if variant == "channels_last":
        x, real = x.contiguous(memory_format=torch.channels_last), real.contiguous(memory_format=torch.channels_last)
    z = model.sample_z(batch, g)
    return lambda: train_step(model, optims, x, real, z, torch.device("cpu"))


def measure(cfg: dict, variant: str, batch: int, steps: int, warmup: int, repeat: int) -> dict:
    iteration = our_iteration(cfg, batch, variant)

    def train():
        for _ in range(steps):
            iteration()

    seconds = timed(train, warmup=warmup, repeat=repeat) / steps
    return {"variant": variant, "s_per_it": round(seconds, 3), "authors_s_per_it": AUTHORS_S_PER_IT,
            "speedup_vs_authors": round(AUTHORS_S_PER_IT / seconds, 3),
            "meets_target": AUTHORS_S_PER_IT / seconds >= TARGET_SPEEDUP}


def segment_rate(cfg: dict, batch: int, repeat: int) -> float:
    model = build(cfg, "plain").eval()
    size = cfg["model"]["image_size"]
    x = torch.rand(batch, 3, size, size) * 2 - 1

    def run():
        with torch.no_grad():
            model.mask_net(x)

    return round(batch / timed(run, warmup=1, repeat=repeat), 2)


def authors_iteration(repo: Path, cfg: dict, batch: int):
    """One iteration of their train.py loop on their networks (see the module docstring)."""
    sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("redo_authors_models", repo / "models.py")
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
    m, tr = cfg["model"], cfg["train"]
    size, k, nz, att = m["image_size"], m["n_regions"], m["z_dim"], m["self_attention"]
    torch.manual_seed(0)
    net_m = theirs._netEncM(sizex=size, nIn=3, nMasks=k, nRes=m["n_res_mask"], nf=m["nf_mask"],
                            temperature=m["temperature"])
    net_g = theirs._netGenX(sizex=size, nOut=3, nc=nz, nf=m["ch"], nMasks=k, selfAtt=att)
    net_d = theirs._resDiscriminator128(nIn=3, nf=m["nf_disc"], selfAtt=att)
    net_z = theirs._netRecZ(sizex=size, nIn=3, nc=nz, nf=m["nf_zenc"], nMasks=k)
    betas = tuple(float(b) for b in tr["betas"])
    opt_m = torch.optim.Adam(net_m.parameters(), lr=tr["lr_mask"], betas=betas, weight_decay=tr["weight_decay_mask"])
    opt_g, opt_d, opt_z = (torch.optim.Adam(n.parameters(), lr=tr["lr"], betas=betas) for n in (net_g, net_d, net_z))
    g = torch.Generator().manual_seed(0)
    x, real = (torch.rand(batch, 3, size, size, generator=g) for _ in range(2))
    z = torch.randn(batch, k, nz, 1, 1, generator=g)

    def composites():
        masks = net_m(x)
        layers = net_g(masks, z)
        return layers, (layers + (1 - masks.unsqueeze(2)) * x.unsqueeze(1)).flatten(0, 1)

    def iteration():
        for net in (net_m, net_g, net_d, net_z):
            net.zero_grad()
            net.train()
        layers, fakes = composites()
        loss_g = -net_d(fakes).mean() + m["lambda_z_factor"] * ((z - net_z(layers.sum(1))) ** 2).mean()
        loss_g.backward()
        for opt in (opt_m, opt_g, opt_z):
            opt.step()
        net_d.zero_grad()
        with torch.no_grad():
            _, fakes = composites()
        err_real, err_fake = -1 + net_d(real), -1 - net_d(fakes)
        loss_d = -((err_real < 0).float() * err_real).mean() - ((err_fake < 0).float() * err_fake).mean()
        loss_d.backward()
        opt_d.step()

    return iteration


def compare_with_authors(args, cfg: dict) -> None:
    common = ["--threads", str(args.threads), "--batch", str(args.batch), "--experiment", args.experiment,
              "--profile", args.profile]
    load_before = os.getloadavg()
    results = sidebyside.side_by_side(Path(__file__).resolve(), sidebyside.workers(args, common), args.repeat)
    speedups = sidebyside.ratios(results)
    emit("redo_throughput", {"experiment": args.experiment, "profile": args.profile,
                             "image_size": cfg["model"]["image_size"], "batch_size": args.batch, "dtype": "float32",
                             "threads": args.threads, "mode": "side by side, one process each, iterations alternated",
                             "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                             "results": results, "speedup_of_ours_median": speedups,
                             "meets_target": speedups.get("authors", 0) >= TARGET_SPEEDUP})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="redo-flowers")
    p.add_argument("--profile", default="paper-released", help="whose model block (default: the released widths)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (the issue's measurement: 2)")
    p.add_argument("--variants", nargs="+", default=["plain", "channels_last"],
                   choices=["plain", "channels_last", "compile"])
    p.add_argument("--steps", type=int, default=1, help="iterations per timed repetition")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept (side by side: "
                                                          "iterations per side, median reported)")
    p.add_argument("--segment", action="store_true", help="also F's segmentation images/s")
    sidebyside.add_arguments(p, "github.com/mickaelChen/ReDO")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.authors is not None and not (args.authors / "models.py").is_file():
        raise SystemExit(f"error: {args.authors} is not a clone of the authors' ReDO repository (no models.py); "
                         "git clone https://github.com/mickaelChen/ReDO")
    applied = retain_freed_memory() if args.allocator == "retain" else False
    cfg = experiment_config(load_params(ROOT / "params.yaml"), args.experiment, args.profile)
    if args.worker:
        step = our_iteration(cfg, args.batch) if args.worker == "ours" else authors_iteration(args.authors, cfg,
                                                                                            args.batch)
        return sidebyside.serve(step, warmup=1)
    if args.authors is not None:
        return compare_with_authors(args, cfg)
    load_before = os.getloadavg()
    rows = [measure(cfg, v, args.batch, args.steps, args.warmup, args.repeat) for v in args.variants]
    extra = {"segment_images_per_s": segment_rate(cfg, 20, args.repeat)} if args.segment else {}
    common = {"experiment": args.experiment, "profile": args.profile, "image_size": cfg["model"]["image_size"],
              "batch_size": args.batch, "dtype": "float32", "threads": args.threads,
              "allocator": "retain" if applied else "system",
              "parameters": sum(t.numel() for t in build(cfg, "plain").state_dict().values()),
              "load_average_before": [round(v, 2) for v in load_before],
              "load_average_after": [round(v, 2) for v in os.getloadavg()], **extra}
    emit("redo_throughput", [{**common, **r} for r in rows])


if __name__ == "__main__":
    main()
