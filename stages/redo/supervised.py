"""Supervised baseline of Fig 5.6: ReDO's mask network F trained with per-pixel cross-entropy on the
first N labelled training images, for each N of ``train.n_labelled`` (all = every labelled image).

The labelled pool is the training split when it has masks, else the validation split (LFW, whose training
images are unlabelled). Optimiser: ReDO's settings for F (Adam, betas (0, 0.9), weight decay) for
``steps`` steps with batches drawn from the N images; scored on the same test split with the same
best-permutation metrics. The thesis gives none of these choices (catalog A34): they are our reading.

    python -m stages.train --experiment supervised-flowers --profile smoke     (trains every N and run)
    python -m stages.evaluate --experiment supervised-flowers --profile smoke  (writes metrics.json)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stages import paths
from stages.checkpoints import build_model, load_checkpoint
from stages.errors import write_json_atomic
from stages.metrics.segmentation import score_masks
from stages.redo.data import SegmentationData, segment_all, to_tensor
from stages.redo.evaluate import spread
from stages.registry import config_digest, experiment_config
from stages.runtime import autocast, select_device, step_generator
from stages.training import experiment_spec, run_training


def labelled_pool(data: SegmentationData):
    split = "train" if data.labelled("train") else "val"
    return data.images[split], data.masks[split], split


def grid(tr: dict, pool_size: int) -> list[int]:
    return sorted({pool_size if n == "all" else min(int(n), pool_size) for n in tr["n_labelled"]})


class SupervisedJob:
    """Every (N, run) cell of the grid in turn, ``steps`` steps each; global step = cell * steps + local step."""

    def __init__(self, cfg: dict, profile: str, device):
        self.cfg, self.tr, self.device = cfg, cfg["train"], device
        self.images, self.masks, self.split = labelled_pool(SegmentationData(cfg, profile))
        self.cells = [(n, run) for n in grid(self.tr, len(self.images)) for run in range(self.tr["runs"])]
        self.states: dict[str, dict] = {}
        self.net = self.opt = None

    @property
    def total(self) -> int:
        return len(self.cells) * self.tr["steps"]

    def _start(self, cell: int) -> None:
        tr = self.tr
        self.cell = cell
        torch.manual_seed(tr["seed"] + self.cells[cell][1])
        self.net = build_model("redo-supervised", self.cfg["model"]).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=tr["lr_mask"], betas=tuple(tr["betas"]),
                                    weight_decay=tr["weight_decay_mask"])

    def step(self, step: int) -> dict:
        tr = self.tr
        cell, local = divmod(step, tr["steps"])
        if local == 0:
            self._start(cell)
        n, run = self.cells[cell]
        gen = step_generator(tr["seed"] + run + 7 * n, local, torch.device("cpu"))
        idx = torch.randint(n, (min(tr["batch_size"], n),), generator=gen).numpy()
        x = to_tensor(self.images[idx], self.device)
        y = torch.from_numpy(self.masks[idx]).long().to(self.device)
        with autocast(self.device):
            loss = F.nll_loss(self.net.log_probs(x).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if local == tr["steps"] - 1:
            self.states[f"{n}_{run}"] = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            print(f"{self.cfg['name']}: N={n} run {run} final loss {float(loss):.4f} (pool: {self.split} split)")
        return {"loss": float(loss), "n_labelled": n, "run": run}

    def validate(self, step: int) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"cell": self.cell, "net": self.net.state_dict(), "opt": self.opt.state_dict(), "states": self.states}

    def load_state_dict(self, state: dict) -> None:
        self._start(state["cell"])
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.states = state["states"]

    def weights(self) -> dict:
        return self.states

    def reset(self, restarts: int) -> None:
        raise NotImplementedError("the supervised baseline never restarts")

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        return {"family": "redo-supervised", "model_config": self.cfg["model"], "states": weights, "pool": self.split,
                **summary}


def train(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    device = select_device(args.device)
    job = SupervisedJob(cfg, profile, device)
    steps = cfg["train"]["steps"]
    spec = experiment_spec(args, params, profile, digest=config_digest([cfg["model"], cfg["train"]]), total=job.total,
                           log_interval=steps, checkpoint_interval=steps)
    return run_training(job, spec, device)


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr, m = cfg["train"], cfg["model"]
    device = select_device(args.device)
    ckpt = load_checkpoint(paths.checkpoint(profile, args.experiment), device)
    data = SegmentationData(cfg, profile)
    curve: dict[int, dict[str, list[float]]] = {}
    for key, state in ckpt["states"].items():
        n = int(key.split("_")[0])
        net = build_model("redo-supervised", m).to(device)
        net.load_state_dict(state)
        net.eval()
        scores = score_masks(data.masks["test"], segment_all(net, data.images["test"], tr["eval_batch_size"], device))
        for name, v in scores.items():
            curve.setdefault(n, {}).setdefault(name, []).append(float(v.mean()))
    points = [{"n_labelled": n, **{k: spread(v) for k, v in curve[n].items()}} for n in sorted(curve)]
    write_json_atomic(paths.metrics(profile, args.experiment), {
        "experiment": args.experiment, "profile": profile, "model": "redo-supervised", "dataset": cfg["dataset"],
        "report": None, "pool": ckpt["pool"], "curve": points, "metrics": {},
    })
    print(f"wrote {paths.metrics(profile, args.experiment)}: " +
          ", ".join(f"N={p['n_labelled']} IoU {p['IoU']['mean']:.3f}" for p in points))
    return 0
