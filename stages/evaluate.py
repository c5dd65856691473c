"""Protocol-exact metrics of one experiment: ``python -m stages.evaluate --experiment X --profile P``.

Dispatches to the evaluator of the experiment's model family (declared by its chapter), which writes
results/<profile>/<experiment>/metrics.json in the common format: {"experiment", "profile", "model",
"dataset", "report", "protocol", "metrics": {column: {"status": "ok", "mean", "ci95", "n"} or
{"status": "unavailable" | "not_reported", "reason"}}}. A metric whose pretrained weights are missing is
reported as unavailable with the reason, never estimated. Chapter 3.2's FVD network: env WEAKGEN_I3D.
"""
from __future__ import annotations

from stages.cli import experiment_parser, run_experiment_step
from stages.errors import run_cli


def main(argv=None) -> int:
    return run_experiment_step("evaluate", experiment_parser("evaluate", __doc__).parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
