"""Chapter 4.1 stages: each model trains then is evaluated (the conditional ones read the emotion
classifier's checkpoint); the chapter adds the data / classifier table once the classifier runs."""
from __future__ import annotations

from stages import paths
from stages.graph import Stage, cli, experiment_inputs, experiment_stage, figure_stage, model_code, step_code
from stages.motion.files import processed_file
from stages.registry import config_digest, protocol_config

TABLE_CSV = "reports/tables/extra_motion_data.csv"
CONDITIONAL_KINDS = ("asfsae", "dasae")


def _classifier_of(cfg: dict) -> str | None:
    proto = cfg.get("protocol") or {}
    return proto.get("classifier") if cfg["model"]["kind"] in CONDITIONAL_KINDS else None


def experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    cfg, ds = experiment_inputs(params, profile, exp)
    entry = params["experiments"][exp]
    data = [processed_file(profile, cfg["dataset"])]
    code = model_code("motion")
    override = entry.get("resources", {})
    ckpt, curve = paths.checkpoint(profile, exp), paths.train_curve(profile, exp)
    stages = [experiment_stage(
        "train", exp, profile, family="motion", deps=code + data, outs=[ckpt, curve], plots=[curve],
        params=[f"experiments.{exp}", f"datasets.{cfg['dataset']}"], digest_of=[cfg["model"], cfg["train"], ds],
        resources_override=override.get("train"),
    )]
    if cfg.get("protocol"):
        classifier = _classifier_of(cfg)
        extra = [paths.checkpoint(profile, classifier)] if classifier else []
        stages.append(experiment_stage(
            "evaluate", exp, profile, family="motion", deps=code + data + [ckpt] + extra,
            outs=[paths.metrics(profile, exp)], metrics=[paths.metrics(profile, exp)],
            params=[f"protocols.{entry['protocol']}", f"experiments.{exp}.report"],
            digest_of=[cfg["protocol"], cfg["model"], cfg["report"]], resources_override=override.get("evaluate"),
        ))
    return stages


def chapter_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    """Per motion protocol whose emotion classifier runs: the Emilya data / classifier table, or, for a
    protocol with a ``table`` (Bandai-Namco), a Table 4.1-shaped table of the rows it names that run."""
    stages = []
    for name, entry in params["protocols"].items():
        if entry["kind"] != "motion":
            continue
        proto = protocol_config(params, name, profile)
        if proto["classifier"] not in exps:
            continue
        classifier = paths.metrics(profile, proto["classifier"])
        spec = proto.get("table")
        if spec is None:
            out, args, deps = TABLE_CSV, [], [paths.REFERENCE_NUMBERS]
        else:
            rows = {label: exp for label, exp in spec["rows"].items() if exp in exps}
            if not rows:
                continue
            out = f"reports/tables/extra_{name.replace('-', '_')}.csv"
            args = ["--number", spec["number"], "--title", spec["title"]]
            for label, exp in rows.items():
                args += ["--row", f"{label}={paths.metrics(profile, exp)}"]
            deps = [paths.metrics(profile, exp) for exp in rows.values()]
        stages.append(Stage(
            name=f"table_extra_{name}" if spec else "table_extra_motion_data",
            cmd=cli("motion.table", "--profile", profile, "--classifier", classifier, *args, "--out", out),
            deps=step_code("motion.table") + [classifier] + deps, outs=[out, out.replace(".csv", ".json")],
            params=[f"protocols.{name}"], digest=config_digest([proto, profile]), extra={"report_table": True},
        ))
    return stages


def figure_stage_for(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    deps = model_code("motion")
    for exp in involved:
        cfg, _ = experiment_inputs(params, profile, exp)
        deps += [paths.checkpoint(profile, exp), processed_file(profile, cfg["dataset"])]
    return figure_stage(fig, spec, profile, deps)
