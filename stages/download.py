"""Fetch a dataset's raw files into data/raw/<dataset>/, checksummed and resumable.

    python -m stages.download --dataset mnist --profile paper

Interrupted downloads resume from their .part file; a checksum mismatch deletes the file and stops with
the expected and actual digests. Licence-gated datasets (CelebA, Human3.6M) are checked, not fetched: the
error says where to obtain them and where to put them. Nothing is fetched for embedded or synthetic
sources (smoke, ci).
"""
from __future__ import annotations

from stages import chapters, paths
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import ConfigError, run_cli
from stages.registry import dataset_config


def parse_args(argv):
    p = stage_parser("download", __doc__)
    p.add_argument("--dataset", required=True, help=f"dataset name: {', '.join(chapters.names('datasets'))}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    decl = chapters.dataset(args.dataset, "--dataset: ")
    cfg = dataset_config(params, args.dataset, profile)
    if cfg.get("source") in ("embedded", "synthetic"):
        print(f"{args.dataset}: profile {profile} uses {cfg['source']} data; nothing to download")
        return 0
    if decl.download is None:
        raise ConfigError(f"dataset {args.dataset} has no raw files to fetch (it is derived from other datasets).")
    resolve_target(decl.download)(paths.raw_dir(args.dataset))
    print(f"{args.dataset}: raw files ready in {paths.raw_dir(args.dataset)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
