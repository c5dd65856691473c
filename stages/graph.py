"""The experiment graph of one profile, derived from the registry.

Snakemake (workflow/Snakefile) turns each `Stage` into a rule and `stages.export_dvc` writes the same
list as dvc.yaml, so both tools run the same commands on the same files. A stage depends on the code
that computes it (its CLI module, the model family, the metrics it uses) and on the params.yaml keys it
reads, so editing one model or one experiment reruns only what depends on it.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from stages import paths
from stages.cli import resolve_target
from stages.errors import ConfigError
from stages.registry import config_digest, dataset_config, enabled_experiments, experiment_config

# Code each kind of stage imports (beyond the generic helpers listed in COMMON_CODE).
COMMON_CODE = ["stages/errors.py", "stages/registry.py", "stages/paths.py", "stages/cli.py"]
DATASET_CODE = {
    "mnist": ["stages/datasets/mnist.py", "stages/datasets/fetch.py"],
    "smmnist": ["stages/datasets/smmnist.py"],
    "celeba": ["stages/datasets/celeba.py", "stages/datasets/fetch.py"],
    # Chapter 5 (ReDO)
    "cmnist2": ["stages/datasets/cmnist.py", "stages/datasets/seg_preprocess.py", "stages/datasets/segmentation.py"],
    "flowers": ["stages/datasets/flowers.py", "stages/datasets/seg_preprocess.py", "stages/datasets/segmentation.py",
                "stages/datasets/synthetic_sources.py", "stages/datasets/fetch.py"],
    "lfw": ["stages/datasets/lfw.py", "stages/datasets/seg_preprocess.py", "stages/datasets/segmentation.py",
            "stages/datasets/synthetic_sources.py", "stages/datasets/fetch.py"],
    "cub": ["stages/datasets/cub.py", "stages/datasets/seg_preprocess.py", "stages/datasets/segmentation.py",
            "stages/datasets/synthetic_sources.py", "stages/datasets/fetch.py"],
    "kth": ["stages/datasets/kth.py", "stages/datasets/videos.py", "stages/datasets/natural.py",
            "stages/datasets/fetch.py"],
    "h36m": ["stages/datasets/h36m.py", "stages/datasets/videos.py", "stages/datasets/natural.py",
             "stages/datasets/fetch.py"],
    "bair": ["stages/datasets/bair.py", "stages/datasets/tfrecord.py", "stages/datasets/videos.py",
             "stages/datasets/natural.py", "stages/datasets/fetch.py"],
}
MODEL_CODE = {
    "srvp": ["models/__init__.py", "models/blocks.py", "models/srvp.py"],
    "svg": ["models/__init__.py", "models/blocks.py", "models/svg.py"],
    "mvbigan": ["models/__init__.py", "models/blocks.py", "models/mvbigan.py"],
    "redo": ["models/blocks.py", "models/gan_blocks.py", "models/redo.py"],
}
FRAME_METRICS_CODE = ["stages/metrics/frame.py"]
LPIPS_CODE = ["stages/metrics/lpips.py", "stages/metrics/weights.py"]
FVD_CODE = ["stages/metrics/fvd.py", "stages/metrics/i3d.py", "stages/metrics/weights.py"]


@dataclass
class Stage:
    name: str
    cmd: list[str]
    deps: list[str]
    outs: list[str]
    params: list[str]                 # dotted params.yaml keys (DVC tracks these)
    digest: str                       # hash of the resolved config the stage reads (Snakemake params trigger)
    gpu: bool = False                 # hint for cluster profiles
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        # Snakemake rule names must be identifiers; DVC accepts the same names.
        self.name = self.name.replace("-", "_").replace(".", "_")

    @property
    def shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.cmd)


def _cli(module: str, *args: str) -> list[str]:
    return ["python", "-m", f"stages.{module}", *args]


def _uniq(items):
    return list(dict.fromkeys(items))


def _dataset_stages(params: dict, profile: str) -> list[Stage]:
    stages: list[Stage] = []
    for name, entry in params["datasets"].items():
        cfg = dataset_config(params, name, profile)
        deps = list(COMMON_CODE) + ["stages/preprocess.py"] + DATASET_CODE.get(name, [])
        if cfg.get("digits_from"):
            deps += DATASET_CODE.get(cfg["digits_from"], []) + paths.processed_files(profile, cfg["digits_from"])
            dep_cfg = dataset_config(params, cfg["digits_from"], profile)
        else:
            dep_cfg = None
        if cfg.get("source") == "official":
            raw = paths.raw_files(name)
            stages.append(Stage(
                name=f"download_{name}",
                cmd=_cli("download", "--dataset", name, "--profile", profile),
                deps=list(COMMON_CODE) + ["stages/download.py"] + DATASET_CODE.get(name, []),
                outs=raw, params=[f"datasets.{name}"], digest=config_digest(cfg),
            ))
            deps += raw
        stages.append(Stage(
            name=f"preprocess_{name}",
            cmd=_cli("preprocess", "--dataset", name, "--profile", profile),
            deps=_uniq(deps), outs=paths.processed_files(profile, name),
            params=[f"datasets.{name}"] + ([f"datasets.{cfg['digits_from']}"] if dep_cfg else []),
            digest=config_digest([cfg, dep_cfg]),
        ))
    return stages


# How each model family's experiment becomes stages, and how each figure kind becomes a stage.
# Chapter modules register here by name ("module:function"), so graph.py never imports them eagerly.
EXPERIMENT_BUILDERS = {
    "srvp": "stages.graph:video_experiment_stages",
    "svg": "stages.graph:video_experiment_stages",
    "mvbigan": "stages.mvbigan.graph:experiment_stages",
    "redo": "stages.redo.graph:redo_experiment_stages",
    "redo-supervised": "stages.redo.graph:supervised_experiment_stages",
}
FIGURE_BUILDERS = {
    "video-comparison": "stages.graph:video_figure_stage",
    "latent-interpolation": "stages.graph:video_figure_stage",
    "mvbigan-views": "stages.mvbigan.graph:figure_stage_for",
    "mvbigan-kl-compare": "stages.mvbigan.graph:figure_stage_for",
    "mvbigan-incoming": "stages.mvbigan.graph:figure_stage_for",
    "mvbigan-celeba": "stages.mvbigan.graph:figure_stage_for",
    "redo-redraws": "stages.redo.graph:redo_figure_stage",
    "redo-extremes": "stages.redo.graph:redo_figure_stage",
    "redo-supervised-curve": "stages.redo.graph:redo_figure_stage",
    "content-swap": "stages.graph:video_figure_stage",
}


def _experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    family = params["experiments"][exp]["model"]
    if family not in EXPERIMENT_BUILDERS:
        raise ConfigError(f"experiments.{exp}.model: unknown model family '{family}'; "
                          f"known: {', '.join(sorted(EXPERIMENT_BUILDERS))}")
    return resolve_target(EXPERIMENT_BUILDERS[family])(params, profile, exp)


def video_experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    """Video prediction (chapter 3.2): train -> sample (N futures, scored) -> evaluate."""
    cfg = experiment_config(params, exp, profile)
    entry = params["experiments"][exp]
    ds = dataset_config(params, cfg["dataset"], profile)
    ds_code = DATASET_CODE.get(cfg["dataset"], [])
    model_code = MODEL_CODE[cfg["family"]]
    train_data = paths.processed_files(profile, ds.get("digits_from") or cfg["dataset"])
    test_data = paths.processed_files(profile, cfg["dataset"])
    exp_keys = [f"experiments.{exp}"]
    ds_keys = [f"datasets.{cfg['dataset']}"]
    proto = cfg.get("protocol")
    proto_keys = [f"protocols.{entry['protocol']}"] if proto else []
    metrics = set(proto["metrics"]) if proto else set()
    run = ["--experiment", exp, "--profile", profile]
    stages = [
        Stage(
            name=f"train_{exp}",
            cmd=_cli("train", *run),
            deps=_uniq(COMMON_CODE + ["stages/train.py", "stages/training.py"] + model_code + ds_code
                       + FRAME_METRICS_CODE + train_data),
            outs=[paths.checkpoint(profile, exp)],
            params=exp_keys + ds_keys, digest=config_digest([cfg["model"], cfg["train"], ds]), gpu=True,
        )
    ]
    if proto:
        sample_code = FRAME_METRICS_CODE + (LPIPS_CODE if "LPIPS" in metrics else [])
        stages.append(Stage(
            name=f"sample_{exp}",
            cmd=_cli("sample", *run),
            deps=_uniq(COMMON_CODE + ["stages/sample.py", "stages/training.py"] + model_code + sample_code
                       + [paths.checkpoint(profile, exp)] + test_data),
            outs=[paths.samples(profile, exp)],
            params=exp_keys + proto_keys, digest=config_digest([cfg["model"], proto]), gpu=True,
        ))
        eval_code = ["stages/metrics/protocol.py"] + (FVD_CODE if "FVD" in metrics else [])
        stages.append(Stage(
            name=f"evaluate_{exp}",
            cmd=_cli("evaluate", *run),
            deps=_uniq(COMMON_CODE + ["stages/evaluate.py"] + eval_code + [paths.samples(profile, exp)] + test_data),
            outs=[paths.metrics(profile, exp)],
            params=proto_keys + [f"experiments.{exp}.report"], digest=config_digest([proto, cfg["report"]]),
            gpu="FVD" in metrics,
        ))
    return stages


def _figure_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    stages = []
    for fig, spec in (params.get("figures") or {}).items():
        roles = spec["experiments"]
        involved = [roles["main"], *roles.get("baselines", [])]
        if not all(e in exps for e in involved):
            continue
        if spec["kind"] not in FIGURE_BUILDERS:
            raise ConfigError(f"figures.{fig}.kind: unknown kind '{spec['kind']}'; "
                              f"known: {', '.join(sorted(FIGURE_BUILDERS))}")
        stages.append(resolve_target(FIGURE_BUILDERS[spec["kind"]])(params, profile, fig, spec, involved))
    return stages


def figure_stage(fig: str, spec: dict, profile: str, deps: list[str]) -> Stage:
    """The stage that draws one figure with ``python -m stages.figures`` from ``deps``."""
    return Stage(
        name=f"figure_{fig.replace('-', '_')}",
        cmd=_cli("figures", "--figure", fig, "--profile", profile),
        deps=_uniq(list(COMMON_CODE) + ["stages/figures.py"] + deps), outs=paths.figure_files(fig),
        params=[f"figures.{fig}"], digest=config_digest(spec),
    )


def video_figure_stage(params: dict, profile: str, fig: str, spec: dict, involved: list[str]) -> Stage:
    """Figures 3.11-3.16: drawn from the kept samples, or from the checkpoint for latent interpolation."""
    deps: list[str] = []
    for exp in involved:
        cfg = experiment_config(params, exp, profile)
        if spec["kind"] == "video-comparison":
            deps += [paths.samples(profile, exp)] + paths.processed_files(profile, cfg["dataset"])
            deps += ["stages/video_figures.py"]  # colour rendering
        else:
            ds = dataset_config(params, cfg["dataset"], profile)
            deps += [paths.checkpoint(profile, exp)] + MODEL_CODE[cfg["family"]] + DATASET_CODE[cfg["dataset"]]
            deps += paths.processed_files(profile, ds.get("digits_from") or cfg["dataset"])
            if spec["kind"] == "content-swap":
                deps += ["stages/video_figures.py", "stages/training.py"]
    return figure_stage(fig, spec, profile, deps)


def _table_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    tables: dict[str, list[str]] = {}
    for exp in exps:
        report = params["experiments"][exp].get("report")
        if report:
            tables.setdefault(report["table"], []).append(exp)
    stages = []
    for table, members in sorted(tables.items()):
        cmd = _cli("tables", "--table", table, "--profile", profile, "--out", paths.table(table))
        for exp in members:
            report = params["experiments"][exp]["report"]
            cmd += ["--metrics", paths.metrics(profile, exp), "--expect", f"{report['dataset']}|{report['model']}"]
        stages.append(Stage(
            name=f"table_{table.replace('.', '_')}",
            cmd=cmd,
            deps=COMMON_CODE + ["stages/tables.py", paths.REFERENCE_NUMBERS] + [paths.metrics(profile, e) for e in members],
            outs=[paths.table(table)], params=[], digest=config_digest(members),
        ))
    return stages


def _thesis_order(params: dict, st: Stage) -> tuple:
    """Sort key putting figures in thesis order (3.5 before 3.11 before 5.4), whatever params.yaml's order."""
    fig = st.cmd[st.cmd.index("--figure") + 1]
    number = params["figures"][fig].get("number") or fig.removeprefix("fig-").replace("-", ".")
    head = number.split(" ")[0]
    return tuple(int(p) if p.isdigit() else 0 for p in head.split(".")), number


def _needed_dataset_stages(params: dict, profile: str, consumers: list[Stage]) -> list[Stage]:
    """Download/preprocess stages whose outputs some consumer reads, directly or through another dataset
    (smmnist reads mnist): a profile that disables experiments does not prepare their data."""
    needed = {dep for st in consumers for dep in st.deps}
    kept = []
    for st in reversed(_dataset_stages(params, profile)):  # dataset stages come in dependency order
        if needed & set(st.outs):
            kept.append(st)
            needed |= set(st.deps)
    return kept[::-1]


def build_graph(params: dict, profile: str) -> list[Stage]:
    """All stages of ``profile`` in dependency order, ending with the report."""
    exps = enabled_experiments(params, profile)
    stages = []
    for exp in exps:
        stages += _experiment_stages(params, profile, exp)
    figures = sorted(_figure_stages(params, profile, exps), key=lambda st: _thesis_order(params, st))
    tables = _table_stages(params, profile, exps)
    stages = _needed_dataset_stages(params, profile, stages + figures) + stages + figures + tables
    report_cmd = _cli("report", "--profile", profile, "--out", paths.REPORT)
    report_deps = list(COMMON_CODE) + ["stages/report.py", paths.REFERENCE_NUMBERS]
    for st in tables:
        report_cmd += ["--table", st.outs[0]]
        report_deps.append(st.outs[0])
    extras = [s for s in stages if s.extra.get("report_table")]     # tables beyond the thesis
    for st in extras:
        report_cmd += ["--extra-table", st.outs[0]]
        report_deps += st.outs
    for st in figures:
        png = next(o for o in st.outs if o.endswith(".png"))
        report_cmd += ["--figure", png]
        report_deps += st.outs
    stages.append(Stage(
        name="report", cmd=report_cmd, deps=report_deps, outs=[paths.REPORT], params=[],
        digest=config_digest([profile, [s.name for s in tables + figures + extras]]),
    ))
    return stages

