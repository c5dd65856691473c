"""Import the authors' released weights of an experiment instead of training it.

    python -m stages.import_weights --experiment srvp-kth --from data/raw/pretrained/srvp/kth/
    python -m stages.import_weights --experiment srvp-kth --profile paper-released     # --from from params.yaml

Checks the file (format, every tensor name and shape, the training options against the experiment's
config in params.yaml: a mismatch names the option and both values), converts it with the converter its
model family declares (``Family.import_weights``) and writes the experiment's checkpoint where the graph
expects it (the one the train stage would write), atomically: on any error nothing is written.
The sample, evaluate, figure and table stages then run on it unchanged. Where to get the files and how
to lay them out: docs/weights.md. Errors print ``error: ...`` and exit with status 2.
"""
from __future__ import annotations

from pathlib import Path

from stages import chapters
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import ConfigError, DataError, run_cli
from stages.registry import experiment_config

PAYLOAD_KEYS = ("family", "model_config", "state_dict", "weights_source")


def parser():
    p = stage_parser("import_weights", __doc__)   # no --device: conversion runs on the CPU
    p.add_argument("--experiment", required=True, help="experiment id from params.yaml (e.g. srvp-kth)")
    p.add_argument("--from", dest="source", metavar="PATH",
                   help="the released folder or file (default: the experiment's weights.from in this profile)")
    p.add_argument("--out", metavar="CKPT", help="checkpoint to write (default: where the graph expects it)")
    return p


def graph_checkpoint(params: dict, profile: str, exp: str) -> str:
    """The checkpoint the experiment's graph reads: the import stage's output, else the train stage's."""
    fam = chapters.family(params["experiments"][exp]["model"])
    stages = resolve_target(fam.stages)(params, profile, exp)
    for st in sorted(stages, key=lambda s: not s.name.startswith("import_")):
        for out in st.outs:
            if out.endswith("checkpoint.pt"):
                return out
    raise ConfigError(f"experiment {exp} has no checkpoint in its graph; pass --out CKPT.")


def import_weights(source: Path, cfg: dict) -> dict:
    """The checkpoint payload of released weights ``source`` for the resolved experiment ``cfg``."""
    fam = chapters.family(cfg["family"])
    if not fam.import_weights:
        raise ConfigError(f"model family {cfg['family']} (experiment {cfg['name']}) has no released-weights "
                          f"converter; its experiments can only be trained.")
    if not source.exists():
        raise DataError(f"{source} does not exist: put the authors' released files there (docs/weights.md) "
                        f"or pass --from PATH.")
    payload = resolve_target(fam.import_weights)(source, cfg)
    missing = [k for k in PAYLOAD_KEYS if k not in payload]
    if missing:  # a converter bug, not a user error: say so plainly
        raise AssertionError(f"{fam.import_weights} returned a payload without {', '.join(missing)}")
    return payload


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    params, profile = load_registry(args)
    cfg = experiment_config(params, args.experiment, profile)
    source = args.source or (cfg.get("weights") or {}).get("from")
    if not source:
        raise ConfigError(f"experiment {args.experiment} has no weights.from in profile {profile}: pass "
                          f"--from PATH (the released folder or file).")
    out = args.out or graph_checkpoint(params, profile, args.experiment)
    payload = import_weights(Path(source), cfg)

    from stages.checkpoints import save_checkpoint  # torch only once the inputs are known to be good

    save_checkpoint(out, payload)
    print(f"wrote {out}: {payload['weights_source']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
