"""The options every stage CLI shares (--profile, --params) and the registry they resolve to."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from stages.allocator import retain_freed_memory
from stages.errors import ConfigError
from stages.registry import check_profile, load_params


def stage_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m stages.{module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="profile from params.yaml (default: its default_profile)")
    parser.add_argument("--params", default="params.yaml", help="registry file (default: params.yaml)")
    return parser


def load_registry(args: argparse.Namespace) -> tuple[dict, str]:
    """Validated params.yaml and the resolved profile name; ConfigError names what is wrong.

    Also applies the profile's ``torch_threads``, so a stage computes the same numbers whichever tool
    (or person) runs it and however many jobs run beside it: through OMP_NUM_THREADS, which torch reads
    when it starts, so that a stage that never needs torch does not pay its 3 s import. And the process keeps
    the memory it frees for reuse (stages/allocator.py: CPU training steps 15-20% faster).
    """
    retain_freed_memory()
    params = load_params(args.params)
    profile = check_profile(params, args.profile)
    threads = params["profiles"][profile].get("torch_threads")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    return params, profile


def resolve_target(target: str):
    """'package.module:function' -> the function; lets a CLI dispatch to chapter modules imported lazily."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def experiment_parser(step: str, doc: str | None) -> argparse.ArgumentParser:
    parser = stage_parser(step, doc)
    parser.add_argument("--experiment", required=True, help="experiment id from params.yaml (e.g. srvp-smmnist)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    return parser


def run_experiment_step(step: str, args: argparse.Namespace) -> int:
    """Dispatch ``python -m stages.<step> --experiment X`` to the step its model family's chapter declares."""
    from stages import chapters
    from stages.registry import experiment_config

    params, profile = load_registry(args)
    family = experiment_config(params, args.experiment, profile)["family"]
    target = getattr(chapters.family(family), step)
    if target is None:
        chapter = chapters.chapter_of_family(family)
        raise ConfigError(f"experiment {args.experiment} (model family {family}, chapter {chapter.title}) has no "
                          f"{step} step; its graph runs train and evaluate only.")
    return resolve_target(target)(args, params, profile)
