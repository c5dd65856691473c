"""Train one experiment: ``python -m stages.train --experiment srvp-smmnist --profile smoke``.

Writes results/<profile>/<experiment>/checkpoint.pt (the model selected on validation best-of-N PSNR, or
the last one), a JSON-lines log in run/train_log.jsonl, and a resumable state in run/train_state.pt
saved every ``checkpoint_interval`` steps. Rerunning after an interruption resumes from that state and
ends with the same weights as an uninterrupted run (same seed, same device).
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from models import build_model
from stages import distributed, paths
from stages.cli import load_registry, resolve_target, stage_parser
from stages.errors import run_cli
from stages.registry import config_digest, dataset_config, experiment_config
from stages.training import (
    STOPPED_EARLY,
    VideoData,
    autocast,
    log_jsonl,
    lr_at,
    save_checkpoint,
    select_device,
    step_generator,
    to_float_video,
    truncate_log,
    validate_psnr,
)


# Model families trained by another chapter's loop ("module:function", called with (args, params, profile)
# and returning the exit status). Families not listed here are video models trained by `train_video` below.
TRAINERS: dict[str, str] = {
    "mvbigan": "stages.mvbigan.train:train_mvbigan",
    "redo": "stages.redo.train:train_all_runs",
    "redo-supervised": "stages.redo.supervised:train_supervised",
}


def parse_args(argv):
    p = stage_parser("train", __doc__)
    p.add_argument("--experiment", required=True, help="experiment id from params.yaml (e.g. srvp-smmnist)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--no-resume", action="store_true", help="ignore a saved state and start from step 0")
    p.add_argument("--stop-after-steps", type=int, default=None, metavar="N",
                   help="save the state and exit (status 3) after N steps of this invocation, e.g. to fit a "
                        "cluster time limit; rerun the same command to continue")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from stages.distributed import relaunch_under_torchrun

    args = parse_args(argv)
    code = relaunch_under_torchrun(argv)  # WEAKGEN_NPROC=N: data-parallel over N processes
    if code is not None:
        return code
    params, profile = load_registry(args)
    family = experiment_config(params, args.experiment, profile)["family"]
    if family in TRAINERS:
        return resolve_target(TRAINERS[family])(args, params, profile)
    return train_video(args, params, profile)


def train_video(args, params: dict, profile: str) -> int:
    """Chapter 3.2 video models: Adam with the SRVP schedule, selection on validation best-of-N PSNR."""
    cfg = experiment_config(params, args.experiment, profile)
    ds_cfg = dataset_config(params, cfg["dataset"], profile)
    tr = cfg["train"]
    ctx, device = distributed.setup(select_device(args.device))
    try:
        return _train_video(args, cfg, ds_cfg, tr, ctx, device, profile)
    finally:
        distributed.teardown(ctx)


def _shard_generator(seed: int, step: int, shard: int, n_shards: int, device: torch.device) -> torch.Generator:
    """One batch, one process: the generator of the single-shard code path (unchanged SM-MNIST results)."""
    if n_shards == 1:
        return step_generator(seed, step, device)
    return step_generator(seed + 104_729 * (shard + 1), step, device)


def _train_video(args, cfg: dict, ds_cfg: dict, tr: dict, ctx, device, profile: str) -> int:
    # The digest ignores how the batch is split (world size, grad_accum): a run may resume on other hardware.
    digest = config_digest([cfg["family"], cfg["model"], {k: v for k, v in tr.items() if k != "grad_accum"}, ds_cfg])
    grad_accum = int(tr.get("grad_accum", 1))
    n_shards = ctx.world * grad_accum

    torch.manual_seed(tr["seed"])  # parameter initialisation (identical on every rank)
    model = build_model(cfg["family"], cfg["model"]).to(device)
    trainer = distributed.wrap(model, ctx, device)
    optim = torch.optim.Adam(model.parameters(), lr=tr["lr"])
    data = VideoData(cfg, ds_cfg, profile)
    n_cond = cfg.get("protocol", {}).get("n_cond", 5)
    total = tr["lr_constant_steps"] + tr["lr_decay_steps"]

    state_path = Path(paths.train_state(profile, args.experiment))
    log_path = Path(paths.train_log(profile, args.experiment))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    step, best_psnr, best_state = 0, float("-inf"), None
    if state_path.exists() and not args.no_resume:
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["digest"] == digest:
            model.load_state_dict(state["model"])
            optim.load_state_dict(state["optim"])
            step, best_psnr, best_state = state["step"], state["best_psnr"], state["best_state"]
            print(f"resuming {args.experiment} from step {step}/{total} ({state_path})")
        else:
            print(f"configuration changed since {state_path} was saved: starting from step 0")
    if ctx.is_main:
        if step == 0:
            log_path.unlink(missing_ok=True)
        truncate_log(log_path, step)

    def save_state():
        if not ctx.is_main:
            return
        save_checkpoint(state_path, {
            "digest": digest, "step": step, "model": model.state_dict(), "optim": optim.state_dict(),
            "best_psnr": best_psnr, "best_state": best_state,
        })

    def validate():
        nonlocal best_psnr, best_state
        psnr = validate_psnr(model, data.val_batches, n_cond, tr["val_samples"], tr["seed"] + step, device)
        log_jsonl(log, {"step": step, "val_psnr": psnr})
        if psnr > best_psnr:
            best_psnr, best_state = psnr, copy.deepcopy(model.state_dict())
        return psnr

    model.train()
    ran = 0
    with open(log_path if ctx.is_main else os.devnull, "a") as log, \
            tqdm(total=total, initial=step, desc=args.experiment, unit="it", dynamic_ncols=True, mininterval=1.0,
                 disable=not ctx.is_main) as bar:
        start = time.perf_counter()
        while step < total:
            lr = lr_at(step, tr["lr"], tr["lr_constant_steps"], tr["lr_decay_steps"])
            for group in optim.param_groups:
                group["lr"] = lr
            batch = data.train_batch(step, tr["batch_size"])
            optim.zero_grad(set_to_none=True)
            parts = []
            for shard, rows in distributed.my_shards(tr["batch_size"], ctx, grad_accum):
                x = to_float_video(batch[rows], device)
                with autocast(device):
                    part = trainer(x, generator=_shard_generator(tr["seed"], step, shard, n_shards, device))
                (part["loss"] / grad_accum).backward()  # DDP then averages over ranks: the mean over shards
                parts.append({k: v.detach() for k, v in part.items()})
            losses = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
            optim.step()
            step += 1
            ran += 1
            bar.update(1)
            values = {k: float(v.detach()) for k, v in losses.items()}
            if step % tr["log_interval"] == 0 or step == total:
                bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
                log_jsonl(log, {"step": step, "lr": lr, **values,
                           "it_per_s": ran / max(time.perf_counter() - start, 1e-9)})
            if ctx.is_main and tr["select"] == "best_val_psnr" and (step % tr["val_interval"] == 0 or step == total):
                bar.set_postfix({**{k: f"{v:.3g}" for k, v in values.items()}, "val_psnr": f"{validate():.2f}"})
            if step % tr["checkpoint_interval"] == 0 or step == total:
                save_state()
            if args.stop_after_steps is not None and ran >= args.stop_after_steps and step < total:
                save_state()
                print(f"stopped after {ran} steps at step {step}/{total}; rerun to resume")
                return STOPPED_EARLY

    if not ctx.is_main:
        return 0
    weights = best_state if (tr["select"] == "best_val_psnr" and best_state is not None) else model.state_dict()
    save_checkpoint(paths.checkpoint(profile, args.experiment), {
        "family": cfg["family"], "model_config": cfg["model"], "state_dict": weights,
        "experiment": args.experiment, "profile": profile, "steps": step,
        "selected": tr["select"], "val_psnr": best_psnr if best_state is not None else None, "digest": digest,
    })
    print(f"wrote {paths.checkpoint(profile, args.experiment)} (steps {step}, best val PSNR {best_psnr:.3f})")
    return 0


if __name__ == "__main__":
    run_cli(main)
