"""Frames scored per second by the best-of-N protocol (PSNR + SSIM, and LPIPS), vectorised over samples
and frames (JSON on stdout).

    python benchmarks/metrics_throughput.py [--sequences 16] [--samples 100] [--frames 20] [--lpips]
"""
from __future__ import annotations

import argparse

from _common import emit, timed

import torch  # noqa: E402

from stages.metrics.frame import psnr_per_frame, ssim_per_frame  # noqa: E402
from stages.metrics.protocol import select_best  # noqa: E402
from stages.video.data import METRIC_CHUNK, METRIC_DTYPE  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sequences", type=int, default=16)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--lpips", action="store_true", help="also time LPIPS (AlexNet) on the same frames")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator(device=dev).manual_seed(0)
    shape = (args.sequences, args.samples, args.frames, args.channels, 64, 64)
    pred = torch.rand(shape, generator=g, device=dev)
    target = torch.rand((args.sequences, 1, *shape[2:]), generator=g, device=dev).expand(shape)
    n_frames = args.sequences * args.samples * args.frames

    def protocol():  # exactly what the sample stage does per batch
        for fn, higher in ((psnr_per_frame, True), (ssim_per_frame, True)):
            select_best(fn(pred, target, chunk_frames=METRIC_CHUNK, dtype=METRIC_DTYPE).cpu().numpy(), higher)

    results = {"shape": list(shape), "device": str(dev)}
    results["psnr_ssim_best_of_n_frames_per_s"] = round(n_frames / timed(protocol, repeat=2), 1)
    if args.lpips:
        from stages.metrics.lpips import LPIPSAlex

        lpips = LPIPSAlex(device=dev)
        sub = pred[:, : min(args.samples, 10)]
        seconds = timed(lambda: lpips(sub, target[:, : sub.shape[1]]), warmup=1, repeat=1)
        results["lpips_frames_per_s"] = round(sub[..., 0, 0, 0].numel() / seconds, 1)
    emit("metrics_throughput", results)


if __name__ == "__main__":
    main()
