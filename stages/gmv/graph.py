"""Chapter 4.2 stages: train each model; CelebA models (those with a ``protocol``) are then evaluated against
the reference experiment's outputs and fill one metrics file per ``report`` entry (stages.graph.report_files).
The reference experiment also writes the per-attribute accuracy table (beyond the thesis)."""
from __future__ import annotations

from stages import paths
from stages.graph import Stage, cli, experiment_inputs, experiment_stage, figure_stage, model_code, report_files, step_code
from stages.gmv.files import accuracy_table, reference_file
from stages.registry import config_digest


def _data(cfg: dict, profile: str) -> list[str]:
    return paths.processed_files(profile, cfg["dataset"])


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg, ds = experiment_inputs(params, profile, exp)
    entry, family = params["experiments"][exp], cfg["family"]
    override = entry.get("resources", {})
    keys = [f"experiments.{exp}", f"datasets.{cfg['dataset']}"] + ([f"protocols.{entry['protocol']}"]
                                                                    if entry.get("protocol") else [])
    ckpt, curve = paths.checkpoint(profile, exp), paths.train_curve(profile, exp)
    stages = [experiment_stage(
        "train", exp, profile, family=family, deps=model_code(family) + _data(cfg, profile), outs=[ckpt, curve],
        plots=[curve], params=keys, digest_of=[cfg["model"], cfg["train"], ds, cfg.get("protocol")],
        resources_override=override.get("train"))]
    metrics = [m for _, m in report_files(params, profile, exp)]
    if not metrics:
        return stages
    proto = cfg["protocol"]
    ref = proto["reference"]
    reads = [ckpt] if ref == exp else [ckpt, paths.checkpoint(profile, ref), reference_file(profile, ref)]
    outs = metrics + ([reference_file(profile, exp)] if ref == exp else [])
    stages.append(experiment_stage(
        "evaluate", exp, profile, family=family, deps=model_code(family) + _data(cfg, profile) + reads, outs=outs,
        metrics=metrics, params=keys, digest_of=[cfg["model"], cfg["train"], proto, cfg["report"]],
        resources_override=override.get("evaluate")))
    return stages


STATISTICS_CSV = "reports/tables/table_4_2.csv"


def statistics_stage(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    """Table 4.2 over the thesis datasets that this profile's chapter-4.2 experiments read."""
    from stages import chapters

    ours = chapters.chapter_of_family("gmv").families
    used, test_from = {}, 10000
    for exp in exps:
        cfg, _ = experiment_inputs(params, profile, exp)
        if any(f.name == cfg["family"] for f in ours) and cfg["dataset"] in ("chairs", "celeba", "mvc", "flowers102"):
            used[cfg["dataset"]] = paths.processed_files(profile, cfg["dataset"])[0]
            if cfg["dataset"] == "celeba" and cfg.get("protocol"):
                test_from = cfg["protocol"]["test_identities_from"]
    if not used:
        return []
    cmd = cli("gmv.statistics", "--profile", profile, "--test-identities-from", str(test_from), "--out", STATISTICS_CSV)
    for name, path in sorted(used.items()):
        cmd += [f"--{name}", path]
    return [Stage(name="table_4_2", cmd=cmd, deps=step_code("gmv.statistics") + [paths.REFERENCE_NUMBERS] + sorted(used.values()),
                  outs=[STATISTICS_CSV, STATISTICS_CSV.replace(".csv", ".json")], params=[],
                  digest=config_digest([sorted(used.items()), test_from]), extra={"report_table": True})]


def chapter_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    """Table 4.2 and the per-attribute accuracy table of each reference experiment that runs (beyond the thesis)."""
    stages = statistics_stage(params, profile, exps)
    for exp in exps:
        cfg, _ = experiment_inputs(params, profile, exp)
        if cfg["family"] != "gmv-reference" or not report_files(params, profile, exp):
            continue
        source = report_files(params, profile, exp)[0][1]
        out = accuracy_table(profile)
        stages.append(Stage(
            name=f"table_extra_{exp}_accuracy", cmd=cli("gmv.accuracy_table", "--metrics", source, "--out", out),
            deps=step_code("gmv.accuracy_table") + [source], outs=[out, out.replace(".csv", ".json")],
            params=[f"experiments.{exp}.report"], digest=config_digest([exp, source]), extra={"report_table": True}))
    return stages


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = []
    for exp in involved:
        cfg, _ = experiment_inputs(params, profile, exp)
        deps += model_code(cfg["family"]) + [paths.checkpoint(profile, exp)] + _data(cfg, profile)
    return figure_stage(fig, spec, profile, deps)
