"""Qualitative figures: ``python -m stages.figures --figure fig-3-11 --profile smoke``.

Writes reports/figures/<figure>.png and a JSON sidecar (figure number, title, caption) for the report.
The figure's ``kind`` (params.yaml ``figures:``) names the drawing function its chapter declares; each
chapter's figures module documents its kinds (stages/<chapter>/figures.py).
"""
from __future__ import annotations

import sys

from stages import chapters, paths
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import ConfigError, run_cli, write_bytes_atomic, write_json_atomic


def parse_args(argv):
    p = stage_parser("figures", __doc__)
    p.add_argument("--figure", required=True, help="figure id from params.yaml `figures:` (e.g. fig-3-11)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    spec = (params.get("figures") or {}).get(args.figure)
    if spec is None:
        raise ConfigError(f"unknown figure '{args.figure}'; known: {sorted(params.get('figures') or {})}")
    draw = resolve_target(chapters.figure_kind(spec["kind"]).draw)
    if "torch" in sys.modules:  # the drawing module uses torch: fix its global RNG (others skip the import)
        sys.modules["torch"].manual_seed(0)
    png, caption = draw(params, profile, spec)
    png_path, json_path = paths.figure_files(args.figure)
    # `number` names figures that share a thesis number (e.g. Fig 5.4 for each dataset): "5.4 (Flowers)".
    number = spec.get("number") or args.figure.removeprefix("fig-").replace("-", ".")
    write_json_atomic(json_path, {"figure": number, "title": spec["title"], "caption": caption,
                                  "experiment": spec["experiments"]["main"], "profile": profile})
    write_bytes_atomic(png_path, png)
    print(f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
