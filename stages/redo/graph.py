"""Chapter 5 stages: ReDO runs (one train stage per run, so a cluster runs them in parallel), their
evaluation, the supervised baseline and the ReDO figures."""
from __future__ import annotations

from stages import paths
from stages.graph import COMMON_CODE, DATASET_CODE, MODEL_CODE, Stage, _cli, _uniq, figure_stage
from stages.redo.data import data_files
from stages.redo.evaluate import segmentation_file
from stages.redo.train import run_checkpoint
from stages.registry import config_digest, experiment_config

REDO_CODE = ["stages/redo/__init__.py", "stages/redo/data.py", "stages/training.py",
             "stages/datasets/segmentation.py", "stages/metrics/segmentation.py"]


def _dataset_code(cfg: dict) -> list[str]:
    return [f for name in [cfg["dataset"], *cfg["train"].get("merge_datasets", [])] for f in DATASET_CODE.get(name, [])]


def redo_experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg = experiment_config(params, exp, profile)
    code = _uniq(COMMON_CODE + REDO_CODE + MODEL_CODE["redo"] + _dataset_code(cfg))
    data = data_files(cfg, profile)
    keys = [f"experiments.{exp}"]
    stages, ckpts = [], []
    for run in range(cfg["train"]["runs"]):
        ckpts.append(run_checkpoint(profile, exp, run))
        stages.append(Stage(
            name=f"train_{exp}_run{run}",
            cmd=_cli("redo.train", "--experiment", exp, "--run", str(run), "--profile", profile),
            deps=_uniq(code + ["stages/redo/train.py"] + data), outs=[ckpts[-1]], params=keys,
            digest=config_digest([cfg["model"], cfg["train"], run]), gpu=True,
        ))
    stages.append(Stage(
        name=f"evaluate_{exp}",
        cmd=_cli("evaluate", "--experiment", exp, "--profile", profile),
        deps=_uniq(code + ["stages/evaluate.py", "stages/redo/train.py", "stages/redo/evaluate.py"] + data + ckpts),
        outs=[paths.metrics(profile, exp), segmentation_file(profile, exp)], params=keys,
        digest=config_digest([cfg["model"], cfg["train"], cfg["report"]]),
    ))
    return stages


def supervised_experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg = experiment_config(params, exp, profile)
    code = _uniq(COMMON_CODE + REDO_CODE + MODEL_CODE["redo"] + _dataset_code(cfg)
                 + ["stages/redo/supervised.py", "stages/redo/evaluate.py", "stages/redo/train.py"])
    data = data_files(cfg, profile)
    keys = [f"experiments.{exp}"]
    ckpt = paths.checkpoint(profile, exp)
    return [
        Stage(name=f"train_{exp}", cmd=_cli("train", "--experiment", exp, "--profile", profile),
              deps=_uniq(code + ["stages/train.py"] + data), outs=[ckpt], params=keys,
              digest=config_digest([cfg["model"], cfg["train"]]), gpu=True),
        Stage(name=f"evaluate_{exp}", cmd=_cli("evaluate", "--experiment", exp, "--profile", profile),
              deps=_uniq(code + ["stages/evaluate.py"] + data + [ckpt]), outs=[paths.metrics(profile, exp)],
              params=keys, digest=config_digest([cfg["model"], cfg["train"]])),
    ]


def redo_figure_stage(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = ["stages/redo/figures.py"] + REDO_CODE + MODEL_CODE["redo"]
    for exp in involved:
        cfg = experiment_config(params, exp, profile)
        deps += [paths.metrics(profile, exp)] + data_files(cfg, profile)
        if cfg["family"] == "redo":
            deps += [run_checkpoint(profile, exp, 0), segmentation_file(profile, exp), "stages/redo/train.py"]
    return figure_stage(fig, spec, profile, _uniq(deps))
