"""The experiment graph of one profile, derived from the registry and the chapter declarations.

Snakemake (Snakefile) turns each `Stage` into a rule and `stages.export_dvc` writes the same list as
dvc.yaml, so both tools run the same commands on the same files. Each chapter builds its experiments'
stages (stages/<chapter>/graph.py) with the helpers here; this module adds the dataset stages the
experiments read, the chapters' own stages, the figures in thesis order, the results tables and the
report. A stage depends on the code its entry modules import (stages/code_deps.py) and on the params.yaml
entries it reads, so editing one model or one experiment reruns only what depends on it.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from stages import chapters, paths
from stages.claims import claims_stage
from stages.cli import resolve_target
from stages.code_deps import code_files
from stages.contract import LIGHT, Resources
from stages.errors import ConfigError
from stages.registry import config_digest, dataset_config, enabled_experiments, experiment_config


@dataclass
class Stage:
    name: str
    cmd: list[str]
    deps: list[str]
    outs: list[str]
    params: list[str]                 # params.yaml entries read (dotted); DVC tracks their resolved leaves
    digest: str                       # hash of the resolved config the stage reads (Snakemake params trigger)
    resources: Resources = LIGHT
    metrics: list[str] = field(default_factory=list)   # outs that are metrics JSON (DVC `metrics:`)
    plots: list[str] = field(default_factory=list)     # outs that are training curves (DVC `plots:`)
    extra: dict = field(default_factory=dict)          # report_table: an extra table the report renders
    chapter: str = ""                                  # title of its thesis chapter (HTML report category)

    def __post_init__(self):
        # Snakemake rule names must be identifiers; DVC accepts the same names.
        self.name = self.name.replace("-", "_").replace(".", "_")
        self.deps = uniq(self.deps)

    @property
    def shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.cmd)


def cli(module: str, *args: str) -> list[str]:
    return ["python", "-m", f"stages.{module}", *args]


def uniq(items) -> list:
    return list(dict.fromkeys(items))


def step_code(step: str, *targets: str) -> list[str]:
    """Code of a stage run as ``python -m stages.<step>`` that dispatches to ``targets``."""
    return code_files(f"stages.{step}", *targets)


def model_code(family: str) -> list[str]:
    return code_files(chapters.family(family).model)


def experiment_stage(step: str, exp: str, profile: str, *, family: str, deps: list[str], outs: list[str],
                     params: list[str], digest_of, resources: Resources | None = None,
                     resources_override: dict | None = None, **kwargs) -> Stage:
    """One ``python -m stages.<step> --experiment exp`` stage whose code is the family's ``step`` callable.

    Resources: ``resources`` or the family's default for the step, then the experiment's params.yaml
    ``resources.<step>`` override."""
    fam = chapters.family(family)
    return Stage(name=f"{step}_{exp}", cmd=cli(step, "--experiment", exp, "--profile", profile),
                 deps=step_code(step, getattr(fam, step)) + deps, outs=outs, params=params,
                 digest=config_digest(digest_of),
                 resources=(resources or fam.resources_for(step)).merged(resources_override), **kwargs)


def import_stage(exp: str, profile: str, *, family: str, source: str, outs: list[str], params: list[str],
                 digest_of, source_files: list[str] | None = None) -> Stage:
    """The stage that turns released weights at ``source`` (an experiment's ``weights: {from: ...}``) into
    the checkpoint(s) ``outs`` the train stage would have written: ``python -m stages.import_weights``.

    ``outs[0]`` is the checkpoint (the command's ``--out``). ``source_files``: the files inside a ``source``
    folder the stage reads (its inputs; default the folder itself), so a dry run names a missing user file."""
    fam = chapters.family(family)
    if not fam.import_weights:
        raise ConfigError(f"experiments.{exp}.weights: model family {family} has no released-weights "
                          f"converter; remove the weights entry (or add Family.import_weights).")
    cmd = cli("import_weights", "--experiment", exp, "--profile", profile, "--from", source, "--out", outs[0])
    return Stage(name=f"import_{exp}", cmd=cmd,
                 deps=step_code("import_weights", fam.import_weights) + model_code(family)
                 + (source_files or [source.rstrip("/")]),
                 outs=outs, params=params, digest=config_digest([digest_of, source]), resources=LIGHT)


def weights_source(cfg: dict) -> str | None:
    """The released-weights path of a resolved experiment config (its ``weights: {from: ...}``), or None."""
    return (cfg.get("weights") or {}).get("from")


def _dataset_stages(params: dict, profile: str) -> list[Stage]:
    stages: list[Stage] = []
    for name in params["datasets"]:
        decl = chapters.dataset(name, f"datasets.{name}: ")
        cfg = dataset_config(params, name, profile)
        deps = step_code("preprocess", decl.preprocess)
        reads = [cfg["digits_from"]] if cfg.get("digits_from") else []
        for other in reads:
            deps += paths.processed_files(profile, other)
        if cfg.get("source") == "official" and decl.download:
            raw = paths.raw_files(name)
            stages.append(Stage(
                name=f"download_{name}", cmd=cli("download", "--dataset", name, "--profile", profile),
                deps=step_code("download", decl.download), outs=raw, params=[f"datasets.{name}"],
                digest=config_digest(cfg), resources=decl.resources,
            ))
            deps += raw
        stages.append(Stage(
            name=f"preprocess_{name}", cmd=cli("preprocess", "--dataset", name, "--profile", profile),
            deps=deps, outs=paths.processed_files(profile, name),
            params=[f"datasets.{n}" for n in [name, *reads]],
            digest=config_digest([cfg] + [dataset_config(params, n, profile) for n in reads]),
            resources=decl.resources,
        ))
    return stages


def _experiment_stages(params: dict, profile: str, exp: str) -> list[Stage]:
    fam = chapters.family(params["experiments"][exp]["model"], f"experiments.{exp}.model: ")
    return resolve_target(fam.stages)(params, profile, exp)


def figure_stage(fig: str, spec: dict, profile: str, deps: list[str]) -> Stage:
    """The stage that draws one figure with ``python -m stages.figures`` from ``deps``."""
    kind = chapters.figure_kind(spec["kind"])
    return Stage(
        name=f"figure_{fig.replace('-', '_')}", cmd=cli("figures", "--figure", fig, "--profile", profile),
        deps=step_code("figures", kind.draw) + deps, outs=paths.figure_files(fig),
        params=[f"figures.{fig}"], digest=config_digest(spec),
    )


def _figure_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    stages = []
    for fig, spec in (params.get("figures") or {}).items():
        if _missing_experiments(spec, exps):
            continue
        kind = chapters.figure_kind(spec["kind"], f"figures.{fig}.kind: ")
        stages += _in_chapter([resolve_target(kind.stage)(params, profile, fig, spec, _involved(spec))],
                              _figure_chapter(spec["kind"]))
    return sorted(stages, key=lambda st: _thesis_order(params, st))


def _involved(spec: dict) -> list[str]:
    roles = spec["experiments"]
    return [roles["main"], *roles.get("baselines", [])]


def _missing_experiments(spec: dict, exps: list[str]) -> list[str]:
    return [e for e in _involved(spec) if e not in exps]


def unbuilt_figures(params: dict, profile: str, exps: list[str]) -> list[str]:
    """``number|title|reason`` of each params.yaml figure this profile cannot draw (its experiments do not run
    here): the report lists them, so a reader sees what exists only in another profile, e.g. paper."""
    out = []
    for fig, spec in (params.get("figures") or {}).items():
        missing = _missing_experiments(spec, exps)
        if missing:
            where = sorted({p for e in missing for p in params["experiments"][e].get("profiles_enabled", [])})
            reason = f"needs {', '.join(missing)}" + (f", run in profile {' / '.join(where)}" if where else "")
            out.append(f"{figure_number(fig, spec)}|{spec['title']}|{reason}")
    return sorted(out, key=lambda line: _number_key(line.split("|")[0]))


def figure_number(fig: str, spec: dict) -> str:
    """The thesis number of a figure: ``number`` names figures that share one (Fig 5.4 for each dataset:
    "5.4 (Flowers)"), otherwise the id says it (fig-3-11 -> 3.11)."""
    return spec.get("number") or fig.removeprefix("fig-").replace("-", ".")


def stage_arg(st: Stage, flag: str) -> str | None:
    """The value of ``flag`` in a stage's command (e.g. its --figure or --experiment), None without one."""
    return st.cmd[st.cmd.index(flag) + 1] if flag in st.cmd else None


def _thesis_order(params: dict, st: Stage) -> tuple:
    """Sort key putting figures in thesis order (3.5 before 3.11 before 5.4), whatever params.yaml's order."""
    fig = stage_arg(st, "--figure")
    return _number_key(figure_number(fig, params["figures"][fig]))


def _number_key(number: str) -> tuple:
    head = number.split(" ")[0]
    return tuple(int(p) if p.isdigit() else 0 for p in head.split(".")), number


def report_files(params: dict, profile: str, exp: str) -> list[tuple[dict, str]]:
    """(report entry, metrics file) of each table an experiment fills (paths.report_files)."""
    return paths.report_files(profile, exp, params["experiments"][exp].get("report"))


def _table_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    tables: dict[str, list[tuple[str, dict, str]]] = {}
    for exp in exps:
        for entry, metrics in report_files(params, profile, exp):
            tables.setdefault(entry["table"], []).append((exp, entry, metrics))
    stages = []
    for table, members in sorted(tables.items()):
        cmd = cli("tables", "--table", table, "--profile", profile, "--out", paths.table(table))
        for _, entry, metrics in members:
            cmd += ["--metrics", metrics, "--expect", f"{entry['dataset']}|{entry['model']}"]
        exps_in = [exp for exp, _, _ in members]
        stages.append(Stage(
            name=f"table_{table.replace('.', '_')}", cmd=cmd,
            deps=step_code("tables") + [paths.REFERENCE_NUMBERS] + [metrics for _, _, metrics in members],
            outs=[paths.table(table)], params=[f"experiments.{e}.report" for e in exps_in],
            digest=config_digest(exps_in), chapter=_experiment_chapter(params, exps_in[0]),
        ))
    return stages


def _chapter_stages(params: dict, profile: str, exps: list[str]) -> list[Stage]:
    return [st for ch in chapters.chapters() if ch.stages
            for st in _in_chapter(resolve_target(ch.stages)(params, profile, exps), ch.title)]


def _in_chapter(stages: list[Stage], title: str) -> list[Stage]:
    """Tag stages with their chapter (the HTML report groups results by chapter); keeps a chapter's own tag."""
    for st in stages:
        st.chapter = st.chapter or title
    return stages


def _experiment_chapter(params: dict, exp: str) -> str:
    return chapters.chapter_of_family(params["experiments"][exp]["model"]).title


def _figure_chapter(kind: str) -> str:
    """Title of the chapter that declares figure kind ``kind``."""
    return chapters.chapter_of_figure_kind(kind).title


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


def _report_stage(profile: str, tables: list[Stage], extras: list[Stage], figures: list[Stage],
                  unbuilt: list[str] = ()) -> Stage:
    cmd = cli("report", "--profile", profile, "--out", paths.REPORT)
    for line in unbuilt:
        cmd += ["--unbuilt-figure", line]
    deps = step_code("report") + [paths.REFERENCE_NUMBERS]
    for st in tables:
        cmd += ["--table", st.outs[0]]
        deps.append(st.outs[0])
    for st in extras:                                      # tables beyond the thesis
        cmd += ["--extra-table", st.outs[0]]
        deps += st.outs
    for st in figures:
        cmd += ["--figure", next(o for o in st.outs if o.endswith(".png"))]
        deps += st.outs
    return Stage(name="report", cmd=cmd, deps=deps, outs=[paths.REPORT], params=[],
                 digest=config_digest([profile, [s.name for s in tables + figures + extras], list(unbuilt)]))


def build_graph(params: dict, profile: str) -> list[Stage]:
    """All stages of ``profile`` in dependency order, ending with the report."""
    exps = enabled_experiments(params, profile)
    stages = [st for exp in exps for st in _in_chapter(_experiment_stages(params, profile, exp),
                                                         _experiment_chapter(params, exp))]
    stages += _chapter_stages(params, profile, exps)
    figures = _figure_stages(params, profile, exps)
    tables = _table_stages(params, profile, exps)
    stages = _needed_dataset_stages(params, profile, stages + figures) + stages + figures + tables
    # the claims page (stages/claims.py) decides on whichever metrics this profile produces
    stages.append(claims_stage(profile, {out for st in stages for out in st.outs}))
    extras = [s for s in stages if s.extra.get("report_table")]
    return stages + [_report_stage(profile, tables, extras, figures, unbuilt_figures(params, profile, exps))]


def experiment_inputs(params: dict, profile: str, exp: str) -> tuple[dict, dict]:
    """Resolved experiment and dataset configuration: what most builders start from."""
    cfg = experiment_config(params, exp, profile)
    return cfg, dataset_config(params, cfg["dataset"], profile)
