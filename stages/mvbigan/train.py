"""Train one MV-BiGAN experiment (called by ``python -m stages.train --experiment mvbigan-...``).

Adam on two parameter groups (D1 + D2, then E + G + H), each step updating the discriminators first.
Every random draw of step t comes from a generator seeded by (seed, t), so a resumed run ends with the
same weights as an uninterrupted one (stages/training.py). The kept checkpoint is the last one (the thesis
selects nothing). Every ``diag_interval`` steps (default: ``log_interval``) the validation hook logs the
conditioning diagnostics of stages/mvbigan/diagnostics.py (observed-pixel error, inversion error, ...).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from stages.checkpoints import build_model
from stages.mvbigan.diagnostics import diagnose
from stages.mvbigan.views import ViewData, make_views
from stages.registry import config_digest, dataset_config, experiment_config
from stages.runtime import autocast, select_device, step_generator
from stages.training import experiment_spec, run_training

DIAG_EXAMPLES, DIAG_SAMPLES = 128, 5   # the logged diagnostics: test examples, samples per example


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


class MVBiGANJob:
    def __init__(self, cfg: dict, profile: str, device):
        self.cfg, self.tr, self.device = cfg, cfg["train"], device
        self.views_cfg = cfg["model"]["views"]
        self.data = ViewData(cfg["dataset"], profile, self.views_cfg)
        self.model_config = model_config(cfg, self.data)
        torch.manual_seed(self.tr["seed"])
        self.model = build_model("mvbigan", self.model_config).to(device)
        betas = (self.tr["beta1"], self.tr["beta2"])
        self.d_optim = torch.optim.Adam(self.model.discriminator_parameters(), lr=self.tr["lr"], betas=betas)
        self.g_optim = torch.optim.Adam(self.model.generator_parameters(), lr=self.tr["lr"], betas=betas)
        self.model.train()
        self._diag_batch = None

    def step(self, step: int) -> dict:
        gen = step_generator(self.tr["seed"], step, self.device)
        y, attrs = self.data.train_batch(self.tr["seed"], step, self.tr["batch_size"], self.device)
        views = make_views(self.views_cfg, y, attrs, generator=gen)
        with autocast(self.device):
            return self.model.train_step(y, views, self.d_optim, self.g_optim, generator=gen)

    def validate(self, step: int) -> dict:
        """The conditioning diagnostics (stages/mvbigan/diagnostics.py) on a fixed batch of test examples,
        logged beside the losses: the learning curve of the observed-pixel error. Selects nothing."""
        if self._diag_batch is None:
            n = min(DIAG_EXAMPLES, len(self.data.test))
            y, attrs = self.data.test_examples(np.arange(n), self.device)
            gen = torch.Generator(device=self.device).manual_seed(self.tr["seed"])
            self._diag_batch = (y, make_views(self.views_cfg, y, attrs, generator=gen))
        y, views = self._diag_batch
        values = diagnose(self.model, self.views_cfg, y, views, n_samples=DIAG_SAMPLES, seed=self.tr["seed"],
                          device=self.device)
        return {key: float(np.nanmean(v)) for key, v in values.items()}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "d_optim": self.d_optim.state_dict(),
                "g_optim": self.g_optim.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.d_optim.load_state_dict(state["d_optim"])
        self.g_optim.load_state_dict(state["g_optim"])

    def weights(self) -> dict:
        return self.model.state_dict()

    def reset(self, restarts: int) -> None:
        raise NotImplementedError("MV-BiGAN training never restarts")

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        return {"family": "mvbigan", "model_config": self.model_config, "views": self.views_cfg,
                "state_dict": weights, "experiment": self.cfg["name"], "profile": self.cfg["profile"], **summary}


def train(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr = cfg["train"]
    device = select_device(args.device)
    job = MVBiGANJob(cfg, profile, device)
    digest = config_digest([cfg["family"], cfg["model"], tr, dataset_config(params, cfg["dataset"], profile)])
    spec = experiment_spec(args, params, profile, digest=digest, total=total_steps(tr, len(job.data.train)),
                           log_interval=tr["log_interval"], checkpoint_interval=tr["checkpoint_interval"],
                           val_interval=tr.get("diag_interval", tr["log_interval"]))
    return run_training(job, spec, device)
