"""Draw and score the samples an evaluation protocol needs: ``python -m stages.sample --experiment X``.

Dispatches to the sample step of the experiment's model family, declared by its chapter (it writes
results/<profile>/<experiment>/samples.h5 for the evaluate step). Families without a sample step
(their evaluation samples as it scores) say so in one ``error:`` line.
"""
from __future__ import annotations

from stages.cli import experiment_parser, run_experiment_step
from stages.errors import run_cli


def main(argv=None) -> int:
    return run_experiment_step("sample", experiment_parser("sample", __doc__).parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
