"""MV-BiGAN stages: each experiment trains and, with a protocol, is evaluated; the chapter adds the
diversity / best-of-N error table (B.1, beyond the thesis) once both experiments its protocol names run."""
from __future__ import annotations

from stages import paths
from stages.graph import Stage, cli, experiment_inputs, experiment_stage, figure_stage, model_code, step_code
from stages.registry import config_digest

TABLE_CSV = "reports/tables/extra_mvbigan_diversity.csv"


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg, ds = experiment_inputs(params, profile, exp)
    entry = params["experiments"][exp]
    data = paths.processed_files(profile, cfg["dataset"])
    override = entry.get("resources", {})
    stages = [experiment_stage(
        "train", exp, profile, family="mvbigan", deps=model_code("mvbigan") + data,
        outs=[paths.checkpoint(profile, exp), paths.train_curve(profile, exp)], plots=[paths.train_curve(profile, exp)],
        params=[f"experiments.{exp}", f"datasets.{cfg['dataset']}"], digest_of=[cfg["model"], cfg["train"], ds],
        resources_override=override.get("train"),
    )]
    proto = cfg.get("protocol")
    if proto:
        stages.append(experiment_stage(
            "evaluate", exp, profile, family="mvbigan", deps=model_code("mvbigan") + [paths.checkpoint(profile, exp)] + data,
            outs=[paths.metrics(profile, exp)], metrics=[paths.metrics(profile, exp)],
            params=[f"protocols.{entry['protocol']}", f"experiments.{exp}.report"], digest_of=[proto, cfg["model"]],
            resources_override=override.get("evaluate"),
        ))
    return stages


def chapter_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    """Table B.1 for each protocol naming a (with KL, without KL) pair of experiments that both run."""
    stages = []
    for name, proto in params["protocols"].items():
        table = proto["base"].get("table") if proto["kind"] == "mvbigan" else None
        if not table or not {table["with_kl"], table["without_kl"]} <= set(exps):
            continue
        with_kl, without_kl = paths.metrics(profile, table["with_kl"]), paths.metrics(profile, table["without_kl"])
        stages.append(Stage(
            name="table_extra_mvbigan_diversity",
            cmd=cli("mvbigan.table", "--profile", profile, "--with-kl", with_kl, "--without-kl", without_kl,
                    "--out", TABLE_CSV),
            deps=step_code("mvbigan.table") + [with_kl, without_kl],
            outs=[TABLE_CSV, TABLE_CSV.replace(".csv", ".json")], params=[f"protocols.{name}.table"],
            digest=config_digest(table), extra={"report_table": True},
        ))
    return stages


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = model_code("mvbigan")
    for exp in involved:
        cfg, _ = experiment_inputs(params, profile, exp)
        deps += [paths.checkpoint(profile, exp)] + paths.processed_files(profile, cfg["dataset"])
    return figure_stage(fig, spec, profile, deps)
