"""The toy chapter's steps: preprocess, train, evaluate, figure, and their graph stages."""
from __future__ import annotations

import json

import numpy as np

from stages import paths
from stages.errors import atomic_path, write_json_atomic
from stages.graph import experiment_stage, figure_stage, model_code
from stages.plotting import render_grid
from stages.registry import experiment_config
from toy_chapter.model import Toy


def preprocess(cfg: dict, profile: str) -> None:
    with atomic_path(paths.processed_files(profile, cfg["name"])[0]) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, x=np.random.default_rng(cfg["seed"]).normal(size=(cfg["n"], 2)))


def experiment_stages(params: dict, profile: str, exp: str):
    cfg = experiment_config(params, exp, profile)
    data = paths.processed_files(profile, cfg["dataset"])
    ckpt, metrics = paths.checkpoint(profile, exp), paths.metrics(profile, exp)
    return [
        experiment_stage("train", exp, profile, family="toy", deps=model_code("toy") + data, outs=[ckpt],
                         params=[f"experiments.{exp}"], digest_of=[cfg["model"], cfg["train"]]),
        experiment_stage("evaluate", exp, profile, family="toy", deps=[ckpt] + data, outs=[metrics],
                         metrics=[metrics], params=[f"experiments.{exp}.report"], digest_of=cfg["report"]),
    ]


def train(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    x = np.load(paths.processed_files(profile, cfg["dataset"])[0])["x"]
    model = Toy.from_config(cfg["model"])
    write_json_atomic(paths.checkpoint(profile, args.experiment), {"mean": (model.scale * x.mean(0)).tolist()})
    return 0


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    mean = json.loads(open(paths.checkpoint(profile, args.experiment)).read())["mean"]
    metrics = {"estimated_log_likelihood_parzen": {"status": "ok", "mean": -1.5, "ci95": 0.25, "n": 2},
               "G2T_mean_min_distance": {"status": "ok", "mean": float(np.hypot(*mean)), "ci95": None, "n": 2},
               "T2G_mean_min_distance": {"status": "not_reported", "reason": "toy"},
               "emotion_classification_accuracy_percent": {"status": "unavailable", "reason": "no classifier"}}
    write_json_atomic(paths.metrics(profile, args.experiment), {
        "experiment": args.experiment, "profile": profile, "model": "toy", "dataset": cfg["dataset"],
        "report": cfg["report"], "protocol": {}, "metrics": metrics})
    return 0


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]):
    return figure_stage(fig, spec, profile, [paths.metrics(profile, e) for e in involved])


def draw(params: dict, profile: str, spec: dict) -> tuple[bytes, str]:
    tile = np.full((8, 8), spec.get("shade", 128), np.uint8)
    return render_grid([("toy", [tile, tile])]), f"Two grey tiles. Profile {profile}."
