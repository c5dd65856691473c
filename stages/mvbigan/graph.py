"""MV-BiGAN stages of the experiment graph (registered in stages/graph.py by name).

An experiment trains; one with a protocol is also evaluated; the experiment named last in its
protocol's ``table`` (with_kl / without_kl) also adds the stage writing the diversity/error table,
which the report renders as a table beyond the thesis (``extra={"report_table": True}``).
"""
from __future__ import annotations

from stages import paths
from stages.graph import COMMON_CODE, DATASET_CODE, Stage, _cli, _uniq, figure_stage
from stages.registry import config_digest, dataset_config, enabled_experiments, experiment_config

MODEL_FILES = ["models/__init__.py", "models/blocks.py", "models/mvbigan.py"]
VIEW_CODE = ["stages/mvbigan/__init__.py", "stages/mvbigan/views.py", "stages/training.py"]
TABLE_CSV = "reports/tables/extra_mvbigan_diversity.csv"


def _data_files(profile: str, dataset: str) -> list[str]:
    return paths.processed_files(profile, dataset)


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg = experiment_config(params, exp, profile)
    entry = params["experiments"][exp]
    ds = dataset_config(params, cfg["dataset"], profile)
    run = ["--experiment", exp, "--profile", profile]
    data = _data_files(profile, cfg["dataset"])
    exp_keys = [f"experiments.{exp}", f"datasets.{cfg['dataset']}"]
    stages = [Stage(
        name=f"train_{exp}", cmd=_cli("train", *run),
        deps=_uniq(COMMON_CODE + ["stages/train.py", "stages/mvbigan/train.py"] + VIEW_CODE + MODEL_FILES
                   + DATASET_CODE.get(cfg["dataset"], []) + data),
        outs=[paths.checkpoint(profile, exp)], params=exp_keys,
        digest=config_digest([cfg["model"], cfg["train"], ds]), gpu=True,
    )]
    proto = cfg.get("protocol")
    if not proto:
        return stages
    proto_key = f"protocols.{entry['protocol']}"
    stages.append(Stage(
        name=f"evaluate_{exp}", cmd=_cli("evaluate", *run),
        deps=_uniq(COMMON_CODE + ["stages/evaluate.py", "stages/mvbigan/evaluate.py", "stages/metrics/protocol.py"]
                   + VIEW_CODE + MODEL_FILES + [paths.checkpoint(profile, exp)] + data),
        outs=[paths.metrics(profile, exp)], params=[proto_key],
        digest=config_digest([proto, cfg["model"]]),
    ))
    table = proto.get("table")
    enabled = set(enabled_experiments(params, profile))
    if table and exp == table["without_kl"] and table["with_kl"] in enabled:
        with_kl, without_kl = paths.metrics(profile, table["with_kl"]), paths.metrics(profile, exp)
        stages.append(Stage(
            name="table_extra_mvbigan_diversity",
            cmd=["python", "-m", "stages.mvbigan.table", "--profile", profile, "--with-kl", with_kl,
                 "--without-kl", without_kl, "--out", TABLE_CSV],
            deps=COMMON_CODE + ["stages/mvbigan/table.py", with_kl, without_kl],
            outs=[TABLE_CSV, TABLE_CSV.replace(".csv", ".json")], params=[proto_key],
            digest=config_digest(table), extra={"report_table": True},
        ))
    return stages


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = ["stages/mvbigan/figures.py", "stages/mvbigan/evaluate.py", "stages/metrics/protocol.py"]
    deps += VIEW_CODE + MODEL_FILES
    for exp in involved:
        cfg = experiment_config(params, exp, profile)
        deps += [paths.checkpoint(profile, exp)] + _data_files(profile, cfg["dataset"])
    return figure_stage(fig, spec, profile, _uniq(deps))
