"""Train one MV-BiGAN experiment (called by ``python -m stages.train --experiment mvbigan-...``).

Adam on two parameter groups (D1 + D2, then E + G + H), each step updating the discriminators first.
Resumable: the state (both optimisers, step) is saved every ``checkpoint_interval`` steps and every
random draw of step t comes from a generator seeded by (seed, t), so an interrupted run that is resumed
ends with the same weights as an uninterrupted one. The kept checkpoint is the last one (the thesis
selects nothing: there is no validation metric for MV-BiGAN).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from models.mvbigan import MVBiGAN
from stages import paths
from stages.mvbigan.views import ViewData, make_views
from stages.registry import config_digest, dataset_config, experiment_config
from stages.training import (STOPPED_EARLY, autocast, log_jsonl, save_checkpoint, select_device, step_generator,
                             truncate_log)


def model_config(cfg: dict, data: ViewData) -> dict:
    """MVBiGAN constructor arguments: the experiment's sizes plus the view shapes of its setting."""
    target, views = data.specs()
    m = cfg["model"]
    return {"target": target, "views": views, "nz": m["nz"], "hidden": m["hidden"], "agg": m["agg"],
            "nf": m.get("nf", 64), "lam": m["lam"]}


def total_steps(tr: dict, n_train: int) -> int:
    if tr.get("steps"):
        return tr["steps"]
    return tr["epochs"] * math.ceil(n_train / tr["batch_size"])


def train_mvbigan(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr = cfg["train"]
    device = select_device(args.device)
    data = ViewData(cfg["dataset"], profile, cfg["model"]["views"])
    mcfg = model_config(cfg, data)
    digest = config_digest([cfg["family"], cfg["model"], tr, dataset_config(params, cfg["dataset"], profile)])
    torch.manual_seed(tr["seed"])
    model = MVBiGAN.from_config(mcfg).to(device)
    betas = (tr["beta1"], tr["beta2"])
    d_optim = torch.optim.Adam(model.discriminator_parameters(), lr=tr["lr"], betas=betas)
    g_optim = torch.optim.Adam(model.generator_parameters(), lr=tr["lr"], betas=betas)
    total = total_steps(tr, len(data.train))

    state_path = Path(paths.train_state(profile, args.experiment))
    log_path = Path(paths.train_log(profile, args.experiment))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    step = 0
    if state_path.exists() and not args.no_resume:
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["digest"] == digest:
            model.load_state_dict(state["model"])
            d_optim.load_state_dict(state["d_optim"])
            g_optim.load_state_dict(state["g_optim"])
            step = state["step"]
            print(f"resuming {args.experiment} from step {step}/{total} ({state_path})")
        else:
            print(f"configuration changed since {state_path} was saved: starting from step 0")
    truncate_log(log_path, step)

    def save_state():
        save_checkpoint(state_path, {"digest": digest, "step": step, "model": model.state_dict(),
                                     "d_optim": d_optim.state_dict(), "g_optim": g_optim.state_dict()})

    model.train()
    ran = 0
    views_cfg = cfg["model"]["views"]
    with open(log_path, "a") as log, tqdm(total=total, initial=step, desc=args.experiment, unit="it",
                                            dynamic_ncols=True, mininterval=1.0) as bar:
        start = time.perf_counter()
        while step < total:
            gen = step_generator(tr["seed"], step, device)
            y, attrs = data.train_batch(tr["seed"], step, tr["batch_size"], device)
            views = make_views(views_cfg, y, attrs, generator=gen)
            with autocast(device):
                losses = model.train_step(y, views, d_optim, g_optim, generator=gen)
            step += 1
            ran += 1
            bar.update(1)
            if step % tr["log_interval"] == 0 or step == total:
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k in ("d_loss", "g_loss", "kl")})
                log_jsonl(log, {"step": step, **losses, "it_per_s": ran / max(time.perf_counter() - start, 1e-9)})
            if step % tr["checkpoint_interval"] == 0 or step == total:
                save_state()
            if args.stop_after_steps is not None and ran >= args.stop_after_steps and step < total:
                save_state()
                print(f"stopped after {ran} steps at step {step}/{total}; rerun to resume")
                return STOPPED_EARLY

    save_checkpoint(paths.checkpoint(profile, args.experiment), {
        "family": "mvbigan", "model_config": mcfg, "views": views_cfg, "state_dict": model.state_dict(),
        "experiment": args.experiment, "profile": profile, "steps": step, "digest": digest,
    })
    print(f"wrote {paths.checkpoint(profile, args.experiment)} ({step} steps)")
    return 0
