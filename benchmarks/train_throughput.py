"""Training iterations per second of SRVP and SVG at smoke and paper sizes (JSON on stdout).

    python benchmarks/train_throughput.py [--device cpu|cuda] [--steps 3]
"""
from __future__ import annotations

import argparse

from _common import ROOT, emit, timed, video_train_step

import torch  # noqa: E402

from stages.checkpoints import build_model  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402


def measure(exp: str, profile: str, device: torch.device, steps: int) -> dict:
    params = load_params(ROOT / "params.yaml")
    cfg = experiment_config(params, exp, profile)
    torch.manual_seed(0)
    model = build_model(cfg["family"], cfg["model"]).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg["train"]["lr"])
    b, t = cfg["train"]["batch_size"], cfg["train"]["seq_len"]
    x = torch.rand(b, t, cfg["model"].get("channels", 1), 64, 64, device=device)

    step = video_train_step(model, opt, x, device)

    seconds = timed(lambda: [step() for _ in range(steps)], warmup=1, repeat=2) / steps
    return {"experiment": exp, "profile": profile, "batch_size": b, "seq_len": t,
            "it_per_s": round(1.0 / seconds, 3), "frames_per_s": round(b * t / seconds, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--profiles", nargs="+", default=["smoke", "paper"])
    args = p.parse_args()
    device = torch.device(args.device)
    results = [measure(exp, prof, device, args.steps)
               for prof in args.profiles for exp in ("srvp-smmnist", "svg-smmnist")]
    emit("train_throughput", results)


if __name__ == "__main__":
    main()
