"""The one training skeleton every trainer runs: chapters supply the step and the validation.

``run_training(job, spec)`` owns everything around the optimisation step:

- resume: a state saved under ``spec.folder`` is resumed only when its config digest matches (a changed
  configuration starts from step 0, and says so); an unreadable state is moved aside, named, and ignored;
- logging: JSON lines in ``train_log.jsonl`` (a torn last line, e.g. from a full disk, is dropped), cut
  back to the resumed step so a resumed run's log reads like one uninterrupted run, and copied as one JSON
  list of the training-step records to ``spec.curve`` at the end (DVC ``plots:`` reads it);
- atomic state saves every ``checkpoint_interval`` steps, a progress bar, ``--stop-after-steps``;
- checkpoint selection: the weights with the best validation score, or the last ones;
- ``config.json``: the resolved experiment, dataset and protocol configuration, in the run folder;
- restarts: a validation may ask for a fresh initialisation (e.g. collapsed segmentation masks); the log position is
  then (restarts, step).

Reproducibility rule: every random draw of a training step comes from a generator seeded by (seed, step)
(stages/runtime.py), so a run resumed from its last saved state replays exactly the steps an
uninterrupted run would have taken.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from stages.checkpoints import load_state, save_checkpoint
from stages.errors import WeakgenError, write_bytes_atomic, write_json_atomic

STOPPED_EARLY = 3  # exit status of --stop-after-steps (every trainer): state saved, rerun to resume
STATE_FORMAT = 2   # bumped when the saved state's layout changes, so an old state is never misread


class TrainingJob(Protocol):
    """What a chapter supplies. ``step`` and ``validate`` return scalar logs; ``validate`` may return
    ``{"score": float}`` (higher is better) for best-checkpoint selection or ``{"restart": reason}``."""

    def step(self, step: int) -> dict: ...
    def validate(self, step: int) -> dict: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def weights(self) -> dict: ...
    def reset(self, restarts: int) -> None: ...
    def checkpoint(self, weights: dict, summary: dict) -> dict: ...


class ModelOptimizersState:
    """State of a job made of ``self.model`` and ``self.optims`` (name -> optimizer): the TrainingJob
    state methods most adversarial trainers share."""

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optim": {k: o.state_dict() for k, o in self.optims.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for k, o in self.optims.items():
            o.load_state_dict(state["optim"][k])

    def weights(self) -> dict:
        return self.model.state_dict()


@dataclass
class RunSpec:
    name: str                         # progress-bar label
    folder: Path                      # train_state.pt, train_log.jsonl, config.json
    checkpoint: Path                  # the kept weights (the stage's declared output)
    curve: Path                       # the log as one JSON list (a declared output)
    digest: str                       # hash of everything the weights depend on
    total: int                        # steps
    config: dict                      # resolved configuration, written to config.json
    log_interval: int
    checkpoint_interval: int
    val_interval: int | None = None   # None: no validation
    select: str = "last"              # "best" (highest validation score) or "last"
    resume: bool = True
    stop_after: int | None = None
    is_main: bool = True              # under DDP only rank 0 validates, logs and writes

    @property
    def state_path(self) -> Path:
        return self.folder / "train_state.pt"

    @property
    def log_path(self) -> Path:
        return self.folder / "train_log.jsonl"


def read_log(path: str | Path) -> list[dict]:
    """Records of a JSON-lines log; a torn line (interrupted write, full disk) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def training_curve(records: list[dict]) -> list[dict]:
    """The training-step records (validation and events stay in the JSON-lines log): DVC plots need every
    record of a file to carry the same fields."""
    return [rec for rec in records if "it_per_s" in rec]


def _position(record: dict) -> tuple[int, int]:
    return record.get("restarts", 0), record.get("step", 0)


def truncate_log(path: str | Path, upto: tuple[int, int]) -> None:
    """Keep the records logged up to position ``upto`` = (restarts, step), drop the rest and torn lines."""
    path = Path(path)
    if not path.exists():
        return
    records = read_log(path)
    if len(records) != sum(1 for line in path.read_text(errors="replace").splitlines() if line.strip()):
        aside = path.with_name(path.name + ".torn")
        shutil.copyfile(path, aside)
        print(f"warning: {path} has unreadable lines (a write cut short, e.g. by a full disk); the original is "
              f"kept as {aside} and the log continues from its readable records")
    kept = [r for r in records if _position(r) <= upto]
    write_bytes_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept).encode())


def _log(handle, record: dict) -> None:
    handle.write(json.dumps(record, sort_keys=True) + "\n")
    handle.flush()  # a crash loses nothing already logged


@dataclass
class _Progress:
    step: int = 0
    restarts: int = 0
    best_score: float | None = None
    best_weights: dict | None = None


def _resume(job: TrainingJob, spec: RunSpec, device) -> _Progress:
    if not spec.resume or not spec.state_path.exists():
        return _Progress()
    state = load_state(spec.state_path, device)
    if state is None:
        return _Progress()
    if state.get("digest") != spec.digest or state.get("format") != STATE_FORMAT:
        print(f"configuration changed since {spec.state_path} was saved: starting from step 0")
        return _Progress()
    if state["restarts"]:
        job.reset(state["restarts"])
    job.load_state_dict(state["job"])
    print(f"resuming {spec.name} from step {state['step']}/{spec.total} ({spec.state_path})")
    return _Progress(state["step"], state["restarts"], state["best_score"], state["best_weights"])


@contextlib.contextmanager
def exclusive_run(folder: Path, name: str):
    """Hold the run folder's lock: a second training of the same run stops with an error naming the holder.

    flock is released by the kernel when the holder dies, so a killed run never leaves a stale lock."""
    path = folder / "train.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            raise WeakgenError(f"{name} is already being trained ({holder}; lock {path}): wait for that run to "
                               f"finish or stop it, then rerun.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)


def run_training(job: TrainingJob, spec: RunSpec, device="cpu") -> int:
    """Train ``job`` to ``spec.total`` steps (or ``spec.stop_after`` more); write the checkpoint. Exit status."""
    spec.folder.mkdir(parents=True, exist_ok=True)
    if not spec.is_main:  # rank 0 holds the lock for every rank
        return _run(job, spec, device)
    with exclusive_run(spec.folder, spec.name):
        return _run(job, spec, device)


def _run(job: TrainingJob, spec: RunSpec, device) -> int:
    at = _resume(job, spec, device)
    if spec.is_main:
        write_json_atomic(spec.folder / "config.json", spec.config)
        if (at.step, at.restarts) == (0, 0):
            spec.log_path.unlink(missing_ok=True)
        truncate_log(spec.log_path, (at.restarts, at.step))

    def save_state():
        if spec.is_main:
            save_checkpoint(spec.state_path, {
                "format": STATE_FORMAT, "digest": spec.digest, "step": at.step, "restarts": at.restarts,
                "best_score": at.best_score, "best_weights": at.best_weights, "job": job.state_dict(),
            })

    def stamp(record: dict) -> dict:
        return {"step": at.step, **({"restarts": at.restarts} if at.restarts else {}), **record}

    ran = 0
    with open(spec.log_path if spec.is_main else os.devnull, "a") as log, \
            tqdm(total=spec.total, initial=at.step, desc=spec.name, unit="it", dynamic_ncols=True,
                 mininterval=1.0, disable=not spec.is_main) as bar:
        start = time.perf_counter()
        while at.step < spec.total:
            logs = job.step(at.step)
            at.step += 1
            ran += 1
            bar.update(1)
            shown = {k: f"{v:.3g}" for k, v in logs.items() if isinstance(v, float)}
            if at.step % spec.log_interval == 0 or at.step == spec.total:
                bar.set_postfix(shown)
                _log(log, stamp({**logs, "it_per_s": ran / max(time.perf_counter() - start, 1e-9)}))
            if spec.is_main and spec.val_interval and (at.step % spec.val_interval == 0 or at.step == spec.total):
                result = job.validate(at.step)
                _log(log, stamp({k: v for k, v in result.items() if k != "restart"}))
                if "restart" in result:
                    at.restarts += 1
                    _log(log, stamp({"event": "restart", "reason": result["restart"]}))
                    print(f"{spec.name}: {result['restart']} at step {at.step}; restart {at.restarts}")
                    job.reset(at.restarts)
                    at.step, at.best_score, at.best_weights = 0, None, None
                    bar.reset(total=spec.total)
                    continue
                bar.set_postfix({**shown, **{k: f"{v:.3g}" for k, v in result.items() if isinstance(v, float)}})
                score = result.get("score")
                if score is not None and (at.best_score is None or score > at.best_score):
                    at.best_score, at.best_weights = score, copy.deepcopy(job.weights())
            if at.step % spec.checkpoint_interval == 0 or at.step == spec.total:
                save_state()
            if spec.stop_after is not None and ran >= spec.stop_after and at.step < spec.total:
                save_state()
                print(f"stopped after {ran} steps at step {at.step}/{spec.total}; rerun to resume")
                return STOPPED_EARLY

    if not spec.is_main:
        return 0
    best = spec.select == "best" and at.best_weights is not None
    summary = {"steps": at.step, "restarts": at.restarts, "selected": spec.select, "digest": spec.digest,
               "val_score": at.best_score}
    save_checkpoint(spec.checkpoint, job.checkpoint(at.best_weights if best else job.weights(), summary))
    write_json_atomic(spec.curve, training_curve(read_log(spec.log_path)))
    score = "" if at.best_score is None else f", best validation score {at.best_score:.4g}"
    print(f"wrote {spec.checkpoint} ({at.step} steps{score}{f', {at.restarts} restarts' if at.restarts else ''})")
    return 0


def experiment_spec(args, params: dict, profile: str, *, digest: str, total: int, log_interval: int,
                    checkpoint_interval: int, run: int | None = None, **options) -> RunSpec:
    """The RunSpec of ``python -m stages.train --experiment X``: the run folder of paths.py (``run<k>/`` for
    one of several runs), the CLI's resume options, and the resolved configuration for config.json."""
    from stages import paths
    from stages.registry import dataset_config, experiment_config

    cfg = experiment_config(params, args.experiment, profile)
    config = {"experiment": cfg, "dataset": dataset_config(params, cfg["dataset"], profile), "run": run}
    return RunSpec(name=args.experiment if run is None else f"{args.experiment} run {run}",
                   folder=Path(paths.state_dir(profile, args.experiment, run)),
                   checkpoint=Path(paths.checkpoint(profile, args.experiment, run)),
                   curve=Path(paths.train_curve(profile, args.experiment, run)), digest=digest, total=total,
                   config=config, log_interval=log_interval, checkpoint_interval=checkpoint_interval,
                   resume=not args.no_resume, stop_after=args.stop_after_steps, **options)
