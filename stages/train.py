"""Train one experiment: ``python -m stages.train --experiment srvp-smmnist --profile smoke``.

Dispatches to the trainer of the experiment's model family (declared by its chapter). Every trainer
runs the one training skeleton (stages/training.py): it writes results/<profile>/<experiment>/checkpoint.pt
(best on validation, or last), the training curve train_log.json beside it, and keeps run/ (train_state.pt,
train_log.jsonl, config.json). Rerunning after an interruption resumes from the saved state and ends with
the same weights as an uninterrupted run. ``WEAKGEN_NPROC=N`` trains data-parallel over N processes
(torchrun) for families that support it.
"""
from __future__ import annotations

from stages.cli import experiment_parser, run_experiment_step
from stages.errors import run_cli


def parse_args(argv):
    p = experiment_parser("train", __doc__)
    p.add_argument("--no-resume", action="store_true", help="ignore a saved state and start from step 0")
    p.add_argument("--stop-after-steps", type=int, default=None, metavar="N",
                   help="save the state and exit (status 3) after N steps of this invocation, e.g. to fit a "
                        "cluster time limit; rerun the same command to continue")
    return p.parse_args(argv)


def _relaunch(args, argv) -> int | None:
    """Under WEAKGEN_NPROC > 1, rerun this command under torchrun when the family trains data-parallel."""
    from stages import chapters, distributed
    from stages.registry import check_profile, experiment_config, load_params

    if distributed.requested_processes() <= 1:
        return None
    params = load_params(args.params)
    family = experiment_config(params, args.experiment, check_profile(params, args.profile))["family"]
    return distributed.relaunch_under_torchrun(argv) if chapters.family(family).ddp else None


def main(argv=None) -> int:
    args = parse_args(argv)
    code = _relaunch(args, argv)
    if code is not None:
        return code
    return run_experiment_step("train", args)


if __name__ == "__main__":
    run_cli(main)
