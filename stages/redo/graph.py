"""Chapter 5 stages: ReDO runs (one train stage per run, so a cluster runs them in parallel) or, where the
experiment names released weights (``weights: {from: ...}``), one import stage writing run 0's checkpoint;
their evaluation, the supervised baseline and the ReDO figures."""
from __future__ import annotations

from stages import chapters, paths
from stages.errors import ConfigError
from stages.graph import Stage, cli, experiment_stage, figure_stage, import_stage, model_code, step_code, weights_source
from stages.redo.files import data_files, segmentation_file
from stages.registry import config_digest, experiment_config


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg = experiment_config(params, exp, profile)
    data = data_files(cfg, profile)
    keys = [f"experiments.{exp}"]
    override = params["experiments"][exp].get("resources", {})
    train_resources = chapters.family("redo").resources_for("train").merged(override.get("train"))
    stages, ckpts = [], []
    released = weights_source(cfg)
    if released:  # the authors' weights replace training (one run: their one released network)
        if cfg["train"]["runs"] != 1:
            raise ConfigError(f"experiments.{exp}: weights.from imports one network; set train.runs: 1 in "
                              f"profile {profile}.")
        ckpts = [paths.checkpoint(profile, exp, 0)]
        stages.append(import_stage(exp, profile, family="redo", source=released, outs=ckpts, params=keys,
                                   digest_of=[cfg["model"], cfg["weights"]]))
    for run in range(0 if released else cfg["train"]["runs"]):
        ckpt, curve = paths.checkpoint(profile, exp, run), paths.train_curve(profile, exp, run)
        ckpts.append(ckpt)
        stages.append(Stage(
            name=f"train_{exp}_run{run}",
            cmd=cli("redo.train", "--experiment", exp, "--run", str(run), "--profile", profile),
            deps=step_code("redo.train") + model_code("redo") + data, outs=[ckpt, curve], plots=[curve],
            params=keys, digest=config_digest([cfg["model"], cfg["train"], run]), resources=train_resources,
        ))
    stages.append(experiment_stage(
        "evaluate", exp, profile, family="redo", deps=model_code("redo") + data + ckpts,
        outs=[paths.metrics(profile, exp), segmentation_file(profile, exp)], metrics=[paths.metrics(profile, exp)],
        params=keys, digest_of=[cfg["model"], cfg["train"], cfg["report"]], resources_override=override.get("evaluate"),
    ))
    return stages


def supervised_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg = experiment_config(params, exp, profile)
    data = data_files(cfg, profile)
    keys = [f"experiments.{exp}"]
    ckpt, curve = paths.checkpoint(profile, exp), paths.train_curve(profile, exp)
    override = params["experiments"][exp].get("resources", {})
    family, code = "redo-supervised", model_code("redo-supervised")
    return [
        experiment_stage("train", exp, profile, family=family, deps=code + data, outs=[ckpt, curve], plots=[curve],
                         params=keys, digest_of=[cfg["model"], cfg["train"]], resources_override=override.get("train")),
        experiment_stage("evaluate", exp, profile, family=family, deps=code + data + [ckpt],
                         outs=[paths.metrics(profile, exp)], metrics=[paths.metrics(profile, exp)], params=keys,
                         digest_of=[cfg["model"], cfg["train"]], resources_override=override.get("evaluate")),
    ]


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = model_code("redo")
    for exp in involved:
        cfg = experiment_config(params, exp, profile)
        deps += [paths.metrics(profile, exp)] + data_files(cfg, profile)
        if cfg["family"] == "redo":
            deps += [paths.checkpoint(profile, exp, 0), segmentation_file(profile, exp)]
    return figure_stage(fig, spec, profile, deps)
