"""Fetch a dataset's raw files into data/raw/<dataset>/, checksummed and resumable.

    python -m stages.download --dataset mnist      # the four official MNIST idx files (paper profile)

Interrupted downloads resume from their .part file; a checksum mismatch deletes the file and stops
with the expected and actual digests. Nothing is downloaded for embedded sources (smoke profile).
"""
from __future__ import annotations


from stages import paths
from stages.datasets import mnist
from stages.cli import load_registry, stage_parser
from stages.errors import run_cli
from stages.registry import dataset_config

def _natural(name: str):
    def run():
        from stages.datasets.natural import download_natural

        download_natural(name)
    return run


DOWNLOADERS = {"mnist": lambda: mnist.download_mnist(paths.raw_dir("mnist")),
               "kth": _natural("kth"), "bair": _natural("bair"), "h36m": _natural("h36m")}


def parse_args(argv):
    p = stage_parser("download", __doc__)
    p.add_argument("--dataset", required=True, choices=sorted(DOWNLOADERS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    cfg = dataset_config(params, args.dataset, profile)
    if cfg.get("source") in ("embedded", "synthetic"):
        print(f"{args.dataset}: profile {profile} uses embedded or synthetic data; nothing to download")
        return 0
    DOWNLOADERS[args.dataset]()
    print(f"{args.dataset}: raw files ready in {paths.raw_dir(args.dataset)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
