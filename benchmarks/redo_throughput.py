"""ReDO training seconds per iteration at the authors' Flowers configuration, beside theirs (JSON on stdout).

    python benchmarks/redo_throughput.py [--threads 2] [--batch 4] [--variants plain channels_last] [--repeat 3]

The configuration is the paper-released redo-flowers model (128x128, released widths: F nfM 64, G_k nfX
32, D and delta nf 64 -> 1024; 93.3 M numbers), float32, batch 4, on the CPU with 2 threads: the issue's
side-by-side measurement, where the authors' train.py iteration took 10.6 s on the 2-core reference machine
(target: <= 8.5 s, 1.25x faster). One iteration = one step of F, the G_k and delta on the n redrawn
composites, then one D step on a real batch against the composites redrawn by the updated F and G_k
(``stages.redo.train.train_step``, as the train stage runs it). Variants: ``plain`` (contiguous tensors),
``channels_last`` (NHWC weights and inputs), ``compile`` (``torch.compile`` of the four networks; slow to
warm up). The load average is printed with the numbers: on a shared machine they are only as good as it is
quiet. ``--segment`` adds F's segmentation throughput (images/s, no autograd).
"""
from __future__ import annotations

import argparse
import os

from _common import ROOT, emit, timed

import torch  # noqa: E402

from models.gan_blocks import skip_init  # noqa: E402
from models.redo import ReDO  # noqa: E402
from stages.redo.train import build_optimisers, train_step  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402

AUTHORS_S_PER_IT = 10.6   # their train.py, Flowers, 128x128, batch 4, float32, 2 threads (issue 13)
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


def measure(cfg: dict, variant: str, batch: int, steps: int, warmup: int, repeat: int) -> dict:
    model = build(cfg, variant)
    optims = build_optimisers(model, cfg["train"])
    size = cfg["model"]["image_size"]
    g = torch.Generator().manual_seed(0)
    x, real = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1 for _ in range(2))
    if variant == "channels_last":
        x, real = x.contiguous(memory_format=torch.channels_last), real.contiguous(memory_format=torch.channels_last)
    z = model.sample_z(batch, g)
    cpu = torch.device("cpu")

    def train():
        for _ in range(steps):
            train_step(model, optims, x, real, z, cpu)

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
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    p.add_argument("--segment", action="store_true", help="also F's segmentation images/s")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = experiment_config(load_params(ROOT / "params.yaml"), args.experiment, args.profile)
    load_before = os.getloadavg()
    rows = [measure(cfg, v, args.batch, args.steps, args.warmup, args.repeat) for v in args.variants]
    extra = {"segment_images_per_s": segment_rate(cfg, 20, args.repeat)} if args.segment else {}
    common = {"experiment": args.experiment, "profile": args.profile, "image_size": cfg["model"]["image_size"],
              "batch_size": args.batch, "dtype": "float32", "threads": args.threads,
              "parameters": sum(t.numel() for t in build(cfg, "plain").state_dict().values()),
              "load_average_before": [round(v, 2) for v in load_before],
              "load_average_after": [round(v, 2) for v in os.getloadavg()], **extra}
    emit("redo_throughput", [{**common, **r} for r in rows])


if __name__ == "__main__":
    main()
