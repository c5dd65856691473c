"""Turn a dataset's raw files into the fixed uint8 arrays every later stage reads.

    python -m stages.preprocess --dataset mnist --profile smoke    -> data/processed/smoke/mnist/digits.npz

The dataset's chapter declares its preprocess function and the files it writes (stages/chapters.py);
the profile's ``datasets.<name>`` block of params.yaml configures it (source: embedded, synthetic,
official or import). Every file is written under a temporary name and renamed once complete.
"""
from __future__ import annotations

from stages import chapters
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import run_cli
from stages.registry import dataset_config


def parse_args(argv):
    p = stage_parser("preprocess", __doc__)
    p.add_argument("--dataset", required=True, help=f"dataset name: {', '.join(chapters.names('datasets'))}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    decl = chapters.dataset(args.dataset, "--dataset: ")
    resolve_target(decl.preprocess)(dataset_config(params, args.dataset, profile), profile)
    return 0


if __name__ == "__main__":
    run_cli(main)
