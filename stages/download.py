"""Fetch a dataset's raw files into data/raw/<dataset>/, checksummed and resumable.

    python -m stages.download --dataset mnist      # the four official MNIST idx files (paper profile)

Interrupted downloads resume from their .part file; a checksum mismatch deletes the file and stops
with the expected and actual digests. Nothing is downloaded for embedded sources (smoke profile).
"""
from __future__ import annotations

import importlib


from stages import paths
from stages.datasets import celeba, mnist
from stages.cli import load_registry, stage_parser
from stages.errors import run_cli
from stages.registry import dataset_config


def _natural(name: str):
    def run():
        from stages.datasets.natural import download_natural

        download_natural(name)
    return run


# CelebA and Human3.6M are licence-gated: their "download" checks the user-supplied files and says where to get them.
DOWNLOADERS = {"mnist": lambda: mnist.download_mnist(paths.raw_dir("mnist")),
               "kth": _natural("kth"), "bair": _natural("bair"), "h36m": _natural("h36m"),
               "celeba": lambda: celeba.check_raw(paths.raw_dir("celeba"))}
# Chapter 5 (ReDO) segmentation archives.
DOWNLOADERS.update({name: (lambda n=name: getattr(importlib.import_module(f"stages.datasets.{n}"), "download")(paths.raw_dir(n)))
                    for name in ("flowers", "lfw", "cub")})


def parse_args(argv):
    p = stage_parser("download", __doc__)
    p.add_argument("--dataset", required=True, choices=sorted(DOWNLOADERS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    cfg = dataset_config(params, args.dataset, profile)
    if cfg.get("source") in ("embedded", "synthetic"):  # synthetic: chapter 5 writes its archives in preprocess
        print(f"{args.dataset}: profile {profile} uses {cfg['source']} data; nothing to download")
        return 0
    DOWNLOADERS[args.dataset]()
    print(f"{args.dataset}: raw files ready in {paths.raw_dir(args.dataset)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
