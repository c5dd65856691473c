"""The options every stage CLI shares (--profile, --params) and the registry they resolve to."""
from __future__ import annotations

import argparse

from stages.registry import check_profile, load_params


def stage_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m stages.{module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="profile from params.yaml (default: its default_profile)")
    parser.add_argument("--params", default="params.yaml", help="registry file (default: params.yaml)")
    return parser


def load_registry(args: argparse.Namespace) -> tuple[dict, str]:
    """Validated params.yaml and the resolved profile name; ConfigError names what is wrong."""
    params = load_params(args.params)
    return params, check_profile(params, args.profile)
