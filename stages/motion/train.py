"""Train one chapter 4.1 model (``python -m stages.train --experiment motion-asfsae``).

Adam on the auto-encoder (encoders, decoder, C_s) and, for the adversarial kinds, Adam on the
discriminators (D_c, D_s), which step first on detached codes (models/motion.py). Batches and noise of
step t come from generators seeded by (seed, t), so a resumed run replays an uninterrupted one. The kept
weights are the best on validation: reconstruction MSE for the auto-encoders, accuracy for the emotion
classifier [T "selected on validation"]. Then the sampling state is fitted on train windows: the
full-covariance Gaussian of the codes (Seq2Seq, ERD) and the emotion frequencies (ASFSAE's labels).
"""
from __future__ import annotations

import numpy as np
import torch

from stages.checkpoints import build_model
from stages.motion.data import EMOTION, MotionData
from stages.registry import config_digest, dataset_config, experiment_config
from stages.runtime import select_device, step_generator
from stages.training import experiment_spec, run_training


def model_config(cfg: dict, data: MotionData) -> dict:
    return {**cfg["model"], "frame_dim": data.frame_dim, "window": data.window, "n_emotions": len(data.emotions)}


@torch.no_grad()
def encode_all(model, data: MotionData, split: str, index, batch: int, device) -> torch.Tensor:
    out = [model.encode(data.windows(split, index[a:a + batch]).to(device)) for a in range(0, len(index), batch)]
    return torch.cat(out)


class MotionJob:
    def __init__(self, cfg: dict, profile: str, device):
        self.cfg, self.tr, self.device = cfg, cfg["train"], device
        self.data = MotionData(cfg["dataset"], profile)
        self.model_config = model_config(cfg, self.data)
        torch.manual_seed(self.tr["seed"])
        self.model = build_model("motion", self.model_config).to(device)
        betas = tuple(self.tr["betas"])
        self.ae_optim = torch.optim.Adam(self.model.autoencoder_parameters(), lr=self.tr["lr"], betas=betas)
        d_params = self.model.discriminator_parameters()
        self.d_optim = torch.optim.Adam(d_params, lr=self.tr["lr"], betas=betas) if d_params else None
        n_val = min(self.tr["n_val"], self.data.count("val"))
        self.val_index = np.random.default_rng(self.tr["seed"]).choice(self.data.count("val"), n_val, replace=False)

    def step(self, step: int) -> dict:
        gen = step_generator(self.tr["seed"], step, torch.device("cpu"))
        idx = torch.randint(self.data.count("train"), (self.tr["batch_size"],), generator=gen).numpy()
        x = self.data.windows("train", idx).to(self.device)
        emotion = self.data.emotion("train", idx).to(self.device)
        self.model.train()
        return self.model.train_step(x, emotion, self.ae_optim, self.d_optim, step, generator=gen)

    @torch.no_grad()
    def validate(self, step: int) -> dict:
        self.model.eval()
        x = self.data.windows("val", self.val_index).to(self.device)
        emotion = self.data.emotion("val", self.val_index).to(self.device)
        if self.model.kind == "classifier":
            acc = float((self.model.classify(x).argmax(1) == emotion).float().mean())
            return {"score": acc, "val_accuracy": acc}
        style = self.model.style_of(x) if self.model.kind == "dasae" else None
        mse = float(torch.nn.functional.mse_loss(self.model.decode(self.model.encode(x),
                                                                   self.model.condition(emotion, style)), x))
        return {"score": -mse, "val_mse": mse}

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "ae_optim": self.ae_optim.state_dict()}
        if self.d_optim is not None:
            state["d_optim"] = self.d_optim.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ae_optim.load_state_dict(state["ae_optim"])
        if self.d_optim is not None:
            self.d_optim.load_state_dict(state["d_optim"])

    def weights(self) -> dict:
        return self.model.state_dict()

    def reset(self, restarts: int) -> None:
        raise NotImplementedError("motion training never restarts")

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        model = build_model("motion", self.model_config).to(self.device)
        model.load_state_dict(weights)
        model.eval()
        if model.kind != "classifier":
            n = min(self.tr["fit_windows"], self.data.count("train"))
            idx = np.random.default_rng(self.tr["seed"] + 1).choice(self.data.count("train"), n, replace=False)
            codes = encode_all(model, self.data, "train", idx, self.tr["batch_size"], self.device)
            emotions = torch.as_tensor(self.data.labels["train"][:, EMOTION]).to(self.device)
            model.fit_code_gaussian(codes, emotions)
        return {"family": "motion", "model_config": self.model_config, "state_dict": model.state_dict(),
                "emotions": self.data.emotions, "experiment": self.cfg["name"], "profile": self.cfg["profile"],
                **summary}


def train(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    tr = cfg["train"]
    device = select_device(args.device)
    job = MotionJob(cfg, profile, device)
    digest = config_digest([cfg["family"], cfg["model"], tr, dataset_config(params, cfg["dataset"], profile)])
    spec = experiment_spec(args, params, profile, digest=digest, total=tr["steps"], log_interval=tr["log_interval"],
                           checkpoint_interval=tr["checkpoint_interval"], val_interval=tr["val_interval"],
                           select="best")
    return run_training(job, spec, device)
