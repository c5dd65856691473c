"""Chapter 3.2 stages: train -> sample (N futures, scored) -> evaluate, and the video figures."""
from __future__ import annotations

from pathlib import PurePosixPath

from stages import paths
from stages.contract import Resources
from stages.graph import (Stage, experiment_inputs, experiment_stage, figure_stage, import_stage, model_code,
                          weights_source)

FVD_EVALUATE = Resources(gpu=1, runtime=120)


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg, ds = experiment_inputs(params, profile, exp)
    entry, family = params["experiments"][exp], cfg["family"]
    override = entry.get("resources", {})
    train_data = paths.processed_files(profile, ds.get("digits_from") or cfg["dataset"])
    test_data = paths.processed_files(profile, cfg["dataset"])
    exp_keys, ds_keys = [f"experiments.{exp}"], [f"datasets.{cfg['dataset']}"]
    released = weights_source(cfg)
    if released:  # the authors' weights replace training: no train stage, no training curve
        stages = [import_stage(exp, profile, family=family, source=released, outs=[paths.checkpoint(profile, exp)],
                               params=exp_keys, digest_of=[cfg["model"], cfg["weights"]],
                               source_files=released_files(released))]
    else:
        stages = [experiment_stage(
            "train", exp, profile, family=family, deps=model_code(family) + train_data,
            outs=[paths.checkpoint(profile, exp), paths.train_curve(profile, exp)],
            plots=[paths.train_curve(profile, exp)], params=exp_keys + ds_keys,
            digest_of=[cfg["model"], cfg["train"], ds], resources_override=override.get("train"),
        )]
    proto = cfg.get("protocol")
    if not proto:
        return stages
    proto_keys = [f"protocols.{entry['protocol']}"]
    fvd = "FVD" in proto["metrics"]
    stages.append(experiment_stage(
        "sample", exp, profile, family=family, deps=model_code(family) + [paths.checkpoint(profile, exp)] + test_data,
        outs=[paths.samples(profile, exp)], params=exp_keys + proto_keys, digest_of=[cfg["model"], proto],
        resources_override=override.get("sample"),
    ))
    stages.append(experiment_stage(
        "evaluate", exp, profile, family=family, deps=[paths.samples(profile, exp)] + test_data,
        outs=[paths.metrics(profile, exp)], metrics=[paths.metrics(profile, exp)],
        params=proto_keys + [f"experiments.{exp}.report"], digest_of=[proto, cfg["report"]],
        resources=FVD_EVALUATE if fvd else None, resources_override=override.get("evaluate"),
    ))
    return stages


def released_files(source: str) -> list[str]:
    """What an SRVP release at ``source`` is read from: a folder's model.pt (the file the authors' test
    script loads) and config.json, or one weights file (e.g. model_best.pt) and the config.json beside it."""
    path = PurePosixPath(source)
    if source.endswith("/") or not path.suffix:
        return [str(path / "model.pt"), str(path / "config.json")]
    return [str(path), str(path.parent / "config.json")]


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    """Figures drawn from the kept samples (video-comparison) or from a checkpoint (the other kinds)."""
    deps: list[str] = []
    for exp in involved:
        cfg, ds = experiment_inputs(params, profile, exp)
        if spec["kind"] == "video-comparison":
            deps += [paths.samples(profile, exp)] + paths.processed_files(profile, cfg["dataset"])
        else:
            deps += [paths.checkpoint(profile, exp)] + model_code(cfg["family"])
            deps += paths.processed_files(profile, ds.get("digits_from") or cfg["dataset"])
    return figure_stage(fig, spec, profile, deps)
