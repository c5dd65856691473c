"""The chapters of the thesis this project runs, and lookups over what they declare.

Adding a chapter = one package under stages/ that defines ``CHAPTER`` (stages/contract.py) + one line in
``CHAPTERS``. Every dispatcher (train, sample, evaluate, figures, preprocess, download), ``paths``, the
schema and the cluster resources read the declarations through this module. ``WEAKGEN_CHAPTERS`` (a
comma-separated list of packages) adds chapters kept outside this repository, e.g. a test's toy chapter.
"""
from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

from stages.contract import Chapter, Dataset, Family, FigureKind, TableFormat
from stages.errors import ConfigError

# In thesis order.
CHAPTERS = [
    "stages.mvbigan",   # 3.1 MV-BiGAN
    "stages.video",     # 3.2 SRVP video prediction
    "stages.motion",    # 4.1 motion capture (Emilya)
    "stages.gmv",       # 4.2 GMV / CGMV multi-view generation
    "stages.redo",      # 5   ReDO unsupervised segmentation
]
EXTRA_ENV = "WEAKGEN_CHAPTERS"


@functools.cache
def _chapters(extra: str) -> tuple[Chapter, ...]:
    names = CHAPTERS + [n.strip() for n in extra.split(",") if n.strip()]
    return tuple(importlib.import_module(n).CHAPTER for n in names)


def chapters() -> tuple[Chapter, ...]:
    return _chapters(os.environ.get(EXTRA_ENV, ""))


def _index(attr: str) -> dict:
    out: dict = {}
    for ch in chapters():
        for item in getattr(ch, attr):
            if item.name in out:
                raise ConfigError(f"{attr[:-1]} '{item.name}' is declared twice (chapters {out[item.name][1]} "
                                  f"and {ch.name}); rename one.")
            out[item.name] = (item, ch.name)
    return out


def _get(attr: str, what: str, name: str, where: str):
    index = _index(attr)
    if name not in index:
        raise ConfigError(f"{where}unknown {what} '{name}'; known: {', '.join(sorted(index))}.")
    return index[name][0]


def family(name: str, where: str = "") -> Family:
    return _get("families", "model family", name, where)


def figure_kind(name: str, where: str = "") -> FigureKind:
    return _get("figures", "figure kind", name, where)


def dataset(name: str, where: str = "") -> Dataset:
    return _get("datasets", "dataset", name, where)


def chapter_of_family(name: str) -> Chapter:
    family(name)
    return next(ch for ch in chapters() if any(f.name == name for f in ch.families))


def chapter_of_figure_kind(name: str) -> Chapter:
    figure_kind(name)
    return next(ch for ch in chapters() if any(f.name == name for f in ch.figures))


def names(attr: str) -> list[str]:
    """Declared names of ``attr`` (families, figures, datasets) over every chapter."""
    return sorted(_index(attr))


def protocol_kinds() -> list[str]:
    return sorted(k for ch in chapters() for k in ch.protocols)


def table_format(table: str) -> TableFormat:
    """The format of ``table``: every chapter that fills rows of it may declare one; they are merged (a chapter
    kept outside stages/ can add rows, decimals or not-re-run rows to a thesis table another chapter owns)."""
    decimals: dict[str, int] = {}
    not_rerun: frozenset = frozenset()
    for ch in chapters():
        if table in ch.tables:
            decimals.update(ch.tables[table].decimals)
            not_rerun |= ch.tables[table].not_rerun
    return TableFormat(decimals=decimals, not_rerun=not_rerun)


def schema_files() -> list[str]:
    return [ch.schema for ch in chapters() if ch.schema]



def declaration_files() -> list[Path]:
    """The files holding the chapters' declarations (each package's ``__init__.py``)."""
    names = CHAPTERS + [n.strip() for n in os.environ.get(EXTRA_ENV, "").split(",") if n.strip()]
    return [Path(importlib.import_module(n).__file__) for n in names]
