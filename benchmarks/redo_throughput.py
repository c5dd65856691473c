"""ReDO training iterations/s and segmentation images/s (JSON on stdout).

    python benchmarks/redo_throughput.py [--device cpu|cuda] [--profiles smoke paper] [--steps 2]

paper = the thesis sizes (128x128, batch 20, ch 32, Flowers configuration); one iteration = one
generator-side step (F, the G_k, delta on the n redrawn composites) and one discriminator step.
Segmentation = F alone on batches of ``eval_batch_size`` images, without autograd.
"""
from __future__ import annotations

import argparse

from _common import ROOT, emit, timed

import torch  # noqa: E402

from models.redo import ReDO  # noqa: E402
from stages.redo.train import build_optimisers, train_step  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402
from stages.runtime import select_device  # noqa: E402


def measure(exp: str, profile: str, device: torch.device, steps: int, warmup: int = 1, repeat: int = 2) -> dict:
    cfg = experiment_config(load_params(ROOT / "params.yaml"), exp, profile)
    tr, size = cfg["train"], cfg["model"]["image_size"]
    torch.manual_seed(0)
    model = ReDO.from_config(cfg["model"]).to(device).train()
    optims = build_optimisers(model, tr)
    b = tr["batch_size"]
    x, real = (torch.rand(b, 3, size, size, device=device) * 2 - 1 for _ in range(2))
    z = model.sample_z(b)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train():
        for _ in range(steps):
            train_step(model, optims, x, real, z, device)
        sync()

    seconds = timed(train, warmup=warmup, repeat=repeat) / steps
    eb = tr["eval_batch_size"]
    xe = torch.rand(eb, 3, size, size, device=device) * 2 - 1

    def segment():
        with torch.no_grad():
            for _ in range(steps):
                model.mask_net(xe)
        sync()

    seg_seconds = timed(segment, warmup=warmup, repeat=repeat) / steps
    return {"experiment": exp, "profile": profile, "image_size": size, "batch_size": b,
            "train_it_per_s": round(1.0 / seconds, 3), "train_images_per_s": round(b / seconds, 1),
            "segment_images_per_s": round(eb / seg_seconds, 1), "device": str(device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--profiles", nargs="+", default=["smoke", "paper"])
    p.add_argument("--experiment", default="redo-flowers")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first (0 for a quick CPU run at paper size)")
    p.add_argument("--repeat", type=int, default=2, help="timed repetitions; the best is kept")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    emit("redo_throughput", [measure(args.experiment, prof, device, args.steps, args.warmup, args.repeat) for prof in args.profiles])


if __name__ == "__main__":
    main()
