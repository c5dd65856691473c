"""Where every artifact lives (relative to the repository root), in one place.

    data/raw/<dataset>/                       downloads / user-supplied archives
    data/processed/<profile>/<dataset>/       fixed splits and test sets, uint8
    results/<profile>/<experiment>/           checkpoint.pt, samples.h5, metrics.json, run/ (resumable state, logs)
    reports/figures, reports/tables           figures (PNG + JSON caption sidecar) and CSV tables
    reports/thesis_tables.pdf                 the report

Which files a dataset has comes from its chapter's declaration (stages/chapters.py).
"""
from __future__ import annotations

from stages import chapters

REFERENCE_NUMBERS = "reference/thesis_numbers.yaml"
REPORT = "reports/thesis_tables.pdf"


def raw_dir(dataset: str) -> str:
    return f"data/raw/{dataset}"


def raw_files(dataset: str) -> list[str]:
    return [f"{raw_dir(dataset)}/{f}" for f in chapters.dataset(dataset).raw]


def processed_dir(profile: str, dataset: str) -> str:
    return f"data/processed/{profile}/{dataset}"


def processed_files(profile: str, dataset: str) -> list[str]:
    return [f"{processed_dir(profile, dataset)}/{f}" for f in chapters.dataset(dataset).processed]


def run_dir(profile: str, experiment: str) -> str:
    return f"results/{profile}/{experiment}"


def outputs_dir(profile: str, experiment: str, run: int | None = None) -> str:
    """Where a training's kept outputs go: the experiment folder, or ``run<k>/`` for one of several runs."""
    return run_dir(profile, experiment) + ("" if run is None else f"/run{run}")


def state_dir(profile: str, experiment: str, run: int | None = None) -> str:
    """Resumable state, JSON-lines log and config.json: deliberately not declared outputs, so orchestrators
    never delete them (``run/``, or ``run<k>/`` beside that run's outputs)."""
    return f"{run_dir(profile, experiment)}/run" + ("" if run is None else str(run))


def checkpoint(profile: str, experiment: str, run: int | None = None) -> str:
    return f"{outputs_dir(profile, experiment, run)}/checkpoint.pt"


def train_curve(profile: str, experiment: str, run: int | None = None) -> str:
    """The training curve as one JSON list, written when training ends (DVC `plots:` reads it)."""
    return f"{outputs_dir(profile, experiment, run)}/train_log.json"


def samples(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/samples.h5"


def metrics(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/metrics.json"


def report_files(profile: str, experiment: str, report: dict | list | None) -> list[tuple[dict, str]]:
    """(report entry, metrics file) of each thesis table an experiment fills: ``report`` (its params.yaml entry)
    is one {table, dataset, model} (metrics.json) or a list of them (one ``metrics_<table>.json`` each)."""
    if not report:
        return []
    if isinstance(report, dict):
        return [(report, metrics(profile, experiment))]
    return [(entry, f"{run_dir(profile, experiment)}/metrics_{entry['table'].replace('.', '_')}.json")
            for entry in report]


def figure_files(figure: str) -> list[str]:
    stem = f"reports/figures/{figure.replace('-', '_')}"
    return [f"{stem}.png", f"{stem}.json"]


def table(table_id: str) -> str:
    return f"reports/tables/table_{table_id.replace('.', '_')}.csv"
