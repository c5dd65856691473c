"""Train ReDO runs: ``python -m stages.redo.train --experiment redo-flowers --run 0 --profile smoke``.

One run = one seed (train.seed + run). Each iteration: one step of F, the G_k and delta on the hinge
generator loss + lambda_z L_z (all n redrawn composites of a batch), then one discriminator step on a
second, independent real batch. Every ``val_interval`` steps the validation IoU is computed (the kept
checkpoint is the one with the best validation IoU) and the masks are checked for collapse: when the
smallest region's mean mask on a train batch and on the validation set are both below
``collapse_threshold`` before ``restart_before`` steps, the run restarts from a fresh initialisation
(new seed), and the restart is logged. Resumable: the state is saved every ``checkpoint_interval``.

Writes results/<profile>/<experiment>/run<k>/checkpoint.pt, run<k>/train_log.jsonl, run<k>/train_state.pt.
``python -m stages.train --experiment redo-...`` trains every run of the experiment in turn.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.redo import ReDO
from stages import paths
from stages.cli import load_registry, stage_parser
from stages.errors import run_cli
from stages.metrics.segmentation import score_masks
from stages.redo.data import SegmentationData, segment_all, to_tensor
from stages.registry import config_digest, experiment_config
from stages.training import STOPPED_EARLY, autocast, save_checkpoint, select_device, step_generator, truncate_log


def run_dir(profile: str, exp: str, run: int) -> str:
    return f"{paths.run_dir(profile, exp)}/run{run}"


def run_checkpoint(profile: str, exp: str, run: int) -> str:
    return f"{run_dir(profile, exp, run)}/checkpoint.pt"


def build_optimisers(model: ReDO, tr: dict) -> dict[str, torch.optim.Optimizer]:
    betas = tuple(tr["betas"])
    return {
        "mask": torch.optim.Adam(model.mask_net.parameters(), lr=tr["lr_mask"], betas=betas,
                                 weight_decay=tr["weight_decay_mask"]),
        "gen": torch.optim.Adam(list(model.generators.parameters()) + list(model.z_encoder.parameters()),
                                lr=tr["lr"], betas=betas),
        "disc": torch.optim.Adam(model.disc.parameters(), lr=tr["lr"], betas=betas),
    }


def is_collapsed(train_frac: float, val_frac: float, step: int, tr: dict) -> bool:
    """ReDO's restart rule: the smallest region is nearly empty on train and val, early in training."""
    return step <= tr["restart_before"] and max(train_frac, val_frac) < tr["collapse_threshold"]


def train_step(model: ReDO, optims: dict, x: torch.Tensor, real: torch.Tensor, z: torch.Tensor, device) -> dict:
    """One generator-side step then one discriminator step; returns scalar logs."""
    with autocast(device):
        out = model.generator_losses(x, z)
    for o in optims.values():
        o.zero_grad(set_to_none=True)
    out["loss"].backward()
    optims["mask"].step()
    optims["gen"].step()
    optims["disc"].zero_grad(set_to_none=True)
    with autocast(device):
        d_loss = model.discriminator_loss(real, out["fakes"])
    d_loss.backward()
    optims["disc"].step()
    return {"loss_g": float(out["loss"].detach()), "adv": float(out["adv"]), "z_err": float(out["z_err"]),
            "loss_d": float(d_loss.detach()), "mask_min_frac": float(out["mask_min_frac"])}


def validate(model: ReDO, data: SegmentationData, batch: int, device) -> tuple[float, float]:
    """Validation IoU (mean over images, best permutation per image) and the smallest mean region fraction."""
    model.eval()
    masks = segment_all(model.mask_net, data.images["val"], batch, device)
    model.train()
    scores = score_masks(data.masks["val"], masks)
    return float(scores["IoU"].mean()), float(masks.mean(axis=(0, 2, 3)).min())


def train_run(cfg: dict, profile: str, run: int, device: torch.device, no_resume: bool = False,
              stop_after_steps: int | None = None) -> int:
    exp, tr = cfg["name"], cfg["train"]
    data = SegmentationData(cfg, profile)
    digest = config_digest([cfg["model"], tr, cfg["dataset"], run])
    out_dir = Path(run_dir(profile, exp, run))
    state_path, log_path = out_dir / "train_state.pt", out_dir / "train_log.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)

    def fresh(restarts: int):
        torch.manual_seed(tr["seed"] + run + 1000 * restarts)
        m = ReDO.from_config(cfg["model"]).to(device)
        return m, build_optimisers(m, tr)

    step, restarts, best_iou, best_state = 0, 0, float("-inf"), None
    model, optims = fresh(0)
    if state_path.exists() and not no_resume:
        state = torch.load(state_path, map_location=device, weights_only=True)
        if state["digest"] == digest:
            step, restarts, best_iou, best_state = state["step"], state["restarts"], state["best_iou"], state["best_state"]
            model, optims = fresh(restarts)
            model.load_state_dict(state["model"])
            for k, o in optims.items():
                o.load_state_dict(state["optim"][k])
            print(f"resuming {exp} run {run} from step {step}")
    if step == 0 and restarts == 0:
        log_path.unlink(missing_ok=True)
    else:  # a restart counts as a later point than any step before it
        truncate_log(log_path, (restarts, step), position=lambda r: (r.get("restarts", 0), r.get("step", 0)))

    def save_state():
        save_checkpoint(state_path, {"digest": digest, "step": step, "restarts": restarts, "best_iou": best_iou,
                                     "best_state": best_state, "model": model.state_dict(),
                                     "optim": {k: o.state_dict() for k, o in optims.items()}})

    n_train, total, bs = len(data.images["train"]), tr["steps"], tr["batch_size"]
    model.train()
    ran = 0
    with open(log_path, "a") as log, tqdm(total=total, initial=step, desc=f"{exp} run {run}", unit="it",
                                            dynamic_ncols=True, mininterval=1.0) as bar:
        start = time.perf_counter()
        while step < total:
            gen = step_generator(tr["seed"] + run + 1000 * restarts, step, torch.device("cpu"))
            idx = torch.randint(n_train, (2, bs), generator=gen).numpy()
            z = torch.randn(bs, model.n_regions, model.z_dim, generator=gen).to(device)
            x, real = to_tensor(data.images["train"][idx[0]], device), to_tensor(data.images["train"][idx[1]], device)
            logs = train_step(model, optims, x, real, z, device)
            step, ran = step + 1, ran + 1
            bar.update(1)
            if step % tr["log_interval"] == 0 or step == total:
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()})
                log.write(json.dumps({"step": step, "restarts": restarts, **logs,
                                      "it_per_s": ran / max(time.perf_counter() - start, 1e-9)}) + "\n")
            if step % tr["val_interval"] == 0 or step == total:
                iou, val_frac = validate(model, data, tr["eval_batch_size"], device)
                log.write(json.dumps({"step": step, "restarts": restarts, "val_iou": iou, "val_min_frac": val_frac}) + "\n")
                if restarts < tr["max_restarts"] and is_collapsed(logs["mask_min_frac"], val_frac, step, tr):
                    restarts += 1
                    log.write(json.dumps({"step": step, "restarts": restarts, "event": "restart",
                                          "reason": f"masks collapsed (min region fraction train "
                                                    f"{logs['mask_min_frac']:.3f}, val {val_frac:.3f})"}) + "\n")
                    print(f"{exp} run {run}: masks collapsed at step {step}; restart {restarts}")
                    model, optims = fresh(restarts)
                    step, best_iou, best_state = 0, float("-inf"), None
                    bar.reset(total=total)
                    continue
                if iou > best_iou:
                    best_iou, best_state = iou, copy.deepcopy(model.state_dict())
            log.flush()
            if step % tr["checkpoint_interval"] == 0 or step == total:
                save_state()
            if stop_after_steps is not None and ran >= stop_after_steps and step < total:
                save_state()
                print(f"stopped after {ran} steps at step {step}/{total}; rerun to resume")
                return STOPPED_EARLY
    save_checkpoint(run_checkpoint(profile, exp, run), {
        "family": "redo", "model_config": cfg["model"], "state_dict": best_state, "experiment": exp,
        "profile": profile, "run": run, "steps": step, "restarts": restarts, "val_iou": best_iou, "digest": digest,
    })
    print(f"wrote {run_checkpoint(profile, exp, run)} (best val IoU {best_iou:.3f}, {restarts} restarts)")
    return 0


def load_redo(path: str, device) -> tuple[ReDO, dict]:
    from stages.errors import DataError

    if not Path(path).is_file():
        raise DataError(f"{path} is missing: run its train stage first (snakemake {path}).")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated files
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun its train stage.") from exc
    model = ReDO.from_config(ckpt["model_config"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def train_all_runs(args, params: dict, profile: str) -> int:
    """`python -m stages.train` entry point: every run of the experiment, in turn."""
    cfg = experiment_config(params, args.experiment, profile)
    device = select_device(args.device)
    for run in range(cfg["train"]["runs"]):
        code = train_run(cfg, profile, run, device, args.no_resume, args.stop_after_steps)
        if code:
            return code
    return 0


def parse_args(argv):
    p = stage_parser("redo.train", __doc__)
    p.add_argument("--experiment", required=True, help="ReDO experiment id from params.yaml (e.g. redo-flowers)")
    p.add_argument("--run", type=int, required=True, help="run index (seed = train.seed + run)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--no-resume", action="store_true", help="ignore a saved state and start from step 0")
    p.add_argument("--stop-after-steps", type=int, default=None, metavar="N",
                   help="save the state and exit (status 3) after N steps; rerun to continue")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    params, profile = load_registry(args)
    cfg = experiment_config(params, args.experiment, profile)
    np.random.seed(0)
    return train_run(cfg, profile, args.run, select_device(args.device), args.no_resume, args.stop_after_steps)


if __name__ == "__main__":
    run_cli(main)
