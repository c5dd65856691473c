"""Fetch a dataset's raw files into data/raw/<dataset>/, checksummed and resumable.

    python -m stages.download --dataset mnist      # the four official MNIST idx files (paper profile)

Interrupted downloads resume from their .part file; a checksum mismatch deletes the file and stops
with the expected and actual digests. Nothing is downloaded for embedded sources (smoke profile).
"""
from __future__ import annotations

import argparse

from stages import paths
from stages.datasets import mnist
from stages.errors import run_cli
from stages.registry import check_profile, dataset_config, load_params

DOWNLOADERS = {"mnist": lambda: mnist.download_mnist(paths.raw_dir("mnist"))}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(DOWNLOADERS))
    p.add_argument("--profile", help="only used to check that the dataset's source needs a download")
    p.add_argument("--params", default="params.yaml")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params = load_params(args.params)
    profile = check_profile(params, args.profile)
    cfg = dataset_config(params, args.dataset, profile)
    if cfg.get("source") == "embedded":
        print(f"{args.dataset}: profile {profile} uses embedded data; nothing to download")
        return 0
    DOWNLOADERS[args.dataset]()
    print(f"{args.dataset}: raw files ready in {paths.raw_dir(args.dataset)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
