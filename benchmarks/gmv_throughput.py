"""Chapter 4 (GMV/CGMV) throughput: identity descriptor images/s and pair-AUC time (JSON on stdout).

    python benchmarks/gmv_throughput.py [--threads 1] [--images 256] [--input-side 64] [--pairs 15000]

Targets (issue 14): the dlib descriptor >= 35 images/s on one CPU thread (input faces 64x64, resized to
150x150 inside describe(), as chapter 4 passes them); the AUC of 15,000 positive x 15,000 negative pair
scores < 0.5 s. A CUDA rate is added when a GPU is present. Each part is one function returning a dict,
so further measurements can be appended to ``measurements``: GMV / CGMV / GANx training it/s and the
attribute classifier's images/s at smoke and paper size (``training_measurements``).
"""
from __future__ import annotations

import argparse

from _common import emit, timed

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stages.metrics.identity import WeightsUnavailable, auc, load_descriptor, pair_distances  # noqa: E402

DESCRIPTOR_TARGET_IMG_S = 35.0
AUC_TARGET_S = 0.5


def descriptor_throughput(device: str, images: int, side: int, batch_size: int, repeat: int) -> dict:
    """Images/s of FaceDescriptor.describe on uint8 side x side faces (resize included)."""
    try:
        face = load_descriptor("dlib", device=device)
    except WeightsUnavailable as exc:  # keep the other measurements
        return {"measure": "identity_descriptor", "device": device, "status": "unavailable", "reason": str(exc)}
    faces = np.random.default_rng(0).integers(0, 256, (images, side, side, 3), dtype=np.uint8)

    def run():
        face.describe(faces, batch_size=batch_size)
        if device == "cuda":
            torch.cuda.synchronize()

    seconds = timed(run, warmup=1, repeat=repeat)
    rate = images / seconds
    result = {"measure": "identity_descriptor", "descriptor": face.label, "device": device,
              "threads": torch.get_num_threads(), "input_side": side, "batch_size": batch_size,
              "images_per_s": round(rate, 1)}
    if device == "cpu":
        result.update(target_images_per_s=DESCRIPTOR_TARGET_IMG_S, meets_target=rate >= DESCRIPTOR_TARGET_IMG_S)
    return result


def auc_time(pairs: int, repeat: int) -> dict:
    """Seconds for pair distances + Mann-Whitney AUC of ``pairs`` positive and ``pairs`` negative pairs."""
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((pairs, 128)).astype(np.float32) for _ in range(3))
    pos_d = pair_distances(a, a + 0.5 * b)
    neg_d = pair_distances(a, c)
    seconds = timed(lambda: auc(-pos_d, -neg_d), warmup=1, repeat=repeat)
    dist_seconds = timed(lambda: pair_distances(a, c), warmup=1, repeat=repeat)
    return {"measure": "identity_auc", "pairs": f"{pairs} x {pairs}", "auc_seconds": round(seconds, 4),
            "pair_distance_seconds": round(dist_seconds, 4), "target_seconds": AUC_TARGET_S,
            "meets_target": seconds < AUC_TARGET_S}


# ---------------------------------------------------------------------------------------------- training (engineer D)
TRAIN_SIZES = {  # (image side, c = v, widths, batch): the smoke profile's nets and the paper's [C]
    "smoke": dict(image_size=32, c_dim=8, v_dim=8, z_dim=16, ngf=8, ndf=8, batch=16),
    "paper": dict(image_size=64, c_dim=64, v_dim=64, z_dim=128, ngf=64, ndf=64, batch=128),
}


def training_throughput(variant: str, size: str, device: str, steps: int) -> dict:
    """Training iterations/s (one D step + one G step) of a models.gmv variant on random image tuples."""
    from models.gmv import MultiViewGAN

    cfg = dict(TRAIN_SIZES[size])
    batch = cfg.pop("batch")
    torch.manual_seed(0)
    model = MultiViewGAN(variant=variant, **cfg).to(device)
    opt_g = torch.optim.Adam(model.generator_parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x = torch.rand(batch, model.views, 3, cfg["image_size"], cfg["image_size"], device=device)

    def run():
        for _ in range(steps):
            fakes = model.fakes(x)
            opt_d.zero_grad()
            model.d_loss(x, fakes).backward()
            opt_d.step()
            opt_g.zero_grad()
            model.g_loss(x, fakes).backward()
            opt_g.step()
        if device == "cuda":
            torch.cuda.synchronize()

    seconds = timed(run, warmup=1, repeat=2)
    return {"measure": "gmv_training", "variant": variant, "size": size, "device": device, "batch": batch,
            "image_size": cfg["image_size"], "it_per_s": round(steps / seconds, 2),
            "threads": torch.get_num_threads()}


def classifier_throughput(size: str, device: str, images: int) -> dict:
    """Attribute-classifier inference images/s (Tables 4.5 / 4.6)."""
    from models.gmv import AttributeClassifier

    side, nf = (32, 8) if size == "smoke" else (64, 64)
    net = AttributeClassifier(image_size=side, nf=nf).to(device).eval()
    x = torch.rand(images, 3, side, side, device=device)

    def run():
        with torch.no_grad():
            for i in range(0, images, 256):
                net(x[i:i + 256])
        if device == "cuda":
            torch.cuda.synchronize()

    seconds = timed(run, warmup=1, repeat=2)
    return {"measure": "gmv_attribute_classifier", "size": size, "device": device, "images_per_s": round(images / seconds, 1)}


def training_measurements(args) -> list[dict]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = []
    for device in devices:
        for size in ("smoke", "paper"):
            steps = args.train_steps if (size == "smoke" or device == "cuda") else 1
            out += [training_throughput(v, size, device, steps) for v in ("gmv", "cgmv", "ganx")]
            out.append(classifier_throughput(size, device, 512 if device == "cpu" else 4096))
    return out


def measurements(args) -> list[dict]:
    results = [descriptor_throughput("cpu", args.images, args.input_side, args.batch_size, args.repeat)]
    if torch.cuda.is_available():
        results.append(descriptor_throughput("cuda", args.images * 8, args.input_side, 256, args.repeat))
    results.append(auc_time(args.pairs, args.repeat))
    if not args.skip_training:
        results += training_measurements(args)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the target is for 1)")
    p.add_argument("--images", type=int, default=256, help="faces described per timed run")
    p.add_argument("--input-side", type=int, default=64, help="side of the uint8 input faces (64 in chapter 4)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass inside describe()")
    p.add_argument("--pairs", type=int, default=15000, help="positive and negative pairs each")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    p.add_argument("--train-steps", type=int, default=5, help="training steps per timed run (paper size on CPU: 1)")
    p.add_argument("--skip-training", action="store_true", help="only the descriptor and AUC measurements")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    emit("gmv_throughput", measurements(args))


if __name__ == "__main__":
    main()
