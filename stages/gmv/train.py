"""Train one chapter-4.2 model: ``python -m stages.train --experiment gmv-celeba --profile smoke``.

GMV / CGMV / GANx / CGAN (models/gmv.py) and Mathieu et al. (models/mathieu.py) share one step: a batch of
k-tuples of train images sharing a content (TupleSampler; k = 2, or GANx's k), the model's generated
tuples, one discriminator Adam step on detached fakes, then one generator (and encoder) Adam step against
the updated discriminator. Adam betas and the two learning rates come from params.yaml. Every random draw
of a step comes from a generator seeded by (seed, step), so a resumed run replays the same steps.
"""
from __future__ import annotations

import numpy as np
import torch

from stages.checkpoints import build_model, load_checkpoint
from stages.gmv.data import TupleSampler, load_splits, to_float
from stages.registry import config_digest, experiment_config
from stages.runtime import select_device, step_generator
from stages.training import ModelOptimizersState, experiment_spec, run_training


class AdversarialJob(ModelOptimizersState):
    def __init__(self, cfg: dict, profile: str, device):
        self.cfg, self.tr, self.device = cfg, cfg["train"], device
        self.train = load_splits(cfg, profile)["train"]
        self.sampler = TupleSampler(self.train.content)
        self.reset(0)

    def reset(self, restarts: int) -> None:
        torch.manual_seed(self.tr["seed"] + 1000 * restarts)
        self.model = build_model(self.cfg["family"], self.cfg["model"]).to(self.device).train()
        betas = tuple(self.tr["betas"])
        d_params = [p for n, p in self.model.named_parameters() if n.startswith("discriminator")]
        self.optims = {"g": torch.optim.Adam(self.model.generator_parameters(), lr=self.tr["lr_g"], betas=betas),
                       "d": torch.optim.Adam(d_params, lr=self.tr["lr_d"], betas=betas)}

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Generator]:
        rng = np.random.default_rng([self.tr["seed"], step])
        k = getattr(self.model, "views", 2)
        idx = self.sampler.draw(rng, self.tr["batch_size"], k)
        return to_float(self.train.images[idx], self.device), step_generator(self.tr["seed"], step, self.device)

    def step(self, step: int) -> dict:
        batch, gen = self.batch(step)
        fakes = self.model.fakes(batch, gen)
        d_loss = self.model.d_loss(batch, fakes)
        self.optims["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optims["d"].step()
        g_loss = self.model.g_loss(batch, fakes)
        self.optims["g"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optims["g"].step()
        return {"loss_d": float(d_loss.detach()), "loss_g": float(g_loss.detach())}

    def validate(self, step: int) -> dict:
        return {}

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        return {"family": self.cfg["family"], "model_config": self.cfg["model"], "state_dict": weights,
                "experiment": self.cfg["name"], "profile": self.cfg["profile"], **summary}


def run(args, params: dict, profile: str, job_class) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr = cfg["train"]
    device = select_device(args.device)
    job = job_class(cfg, profile, device)
    spec = experiment_spec(args, params, profile, digest=config_digest([cfg["model"], tr, cfg["dataset"],
                                                                         cfg.get("protocol")]),
                           total=tr["steps"], log_interval=tr["log_interval"],
                           checkpoint_interval=tr["checkpoint_interval"])
    return run_training(job, spec, device)


def train(args, params: dict, profile: str) -> int:
    """`python -m stages.train` entry point of the adversarial families."""
    return run(args, params, profile, AdversarialJob)


def load_trained(path: str, device):
    """The trained model of a checkpoint, in eval mode."""
    ckpt = load_checkpoint(path, device)
    model = build_model(ckpt["family"], ckpt["model_config"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
