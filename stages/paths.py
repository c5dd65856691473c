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


def checkpoint(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/checkpoint.pt"


def train_state(profile: str, experiment: str) -> str:
    """Resumable training state: deliberately not a declared output, so orchestrators never delete it."""
    return f"{run_dir(profile, experiment)}/run/train_state.pt"


def train_log(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/run/train_log.jsonl"


def train_curve(profile: str, experiment: str) -> str:
    """The training log as one JSON list, written when training ends (DVC `plots:` reads it)."""
    return f"{run_dir(profile, experiment)}/train_log.json"


def samples(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/samples.h5"


def metrics(profile: str, experiment: str) -> str:
    return f"{run_dir(profile, experiment)}/metrics.json"


def figure_files(figure: str) -> list[str]:
    stem = f"reports/figures/{figure.replace('-', '_')}"
    return [f"{stem}.png", f"{stem}.json"]


def table(table_id: str) -> str:
    return f"reports/tables/table_{table_id.replace('.', '_')}.csv"
