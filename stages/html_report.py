"""What Snakemake's HTML report shows, and the captions and training curves it shows them with.

    snakemake --cores all && snakemake --report reports/report.html      # or make report

Every figure PNG, results-table CSV and experiment's training curves in the graph of a profile is a report
item, grouped by chapter (Snakemake category) and thesis number (subcategory). The Snakefile flags each item
on the rule that writes it, so a chapter added later is in the report without edits, and adds one rule,
``html_report``, that runs ``python -m stages.html_report --profile P``. That command writes, under
reports/html/, each item's caption (reStructuredText, from the same sidecar or reference caption that the
PDF prints, never a second copy) and one PNG of training curves per experiment (its train_log.json files).

The rule is Snakemake's only: DVC has its own views of the curves (``dvc plots show``).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from stages import paths
from stages.errors import DataError, run_cli, write_bytes_atomic
from stages.graph import Stage, build_graph, cli, figure_number, stage_arg, step_code, uniq
from stages.registry import config_digest

HTML_DIR = "reports/html"
CAPTIONS = f"{HTML_DIR}/captions"
CURVES = f"{HTML_DIR}/curves"
CURVES_SUBCATEGORY = "Training curves"
# Training-log keys that are bookkeeping, not curves.
NOT_CURVES = {"step", "run", "it_per_s", "lr"}


@dataclass(frozen=True)
class Item:
    """One result of the HTML report and where it sits there."""
    kind: str                       # figure | table (a thesis table) | extra (beyond the thesis) | curves
    path: str                       # the result file
    caption: str                    # its caption file (.rst), written by the html_report rule
    category: str                   # chapter title
    subcategory: str | Callable     # "Figure 3.5", "Table 3.2", "Training curves"; callables run at report time
    labels: dict | Callable         # one label naming the result (the report's table column), and the profile
    sources: tuple[str, ...]        # what its caption (and its plot) is written from
    code: tuple[str, ...]           # the source files of the stage that made it (the caption gives their digest)


def _code(st: Stage) -> tuple[str, ...]:
    return tuple(d for d in st.deps if d.endswith(".py"))


def _extra_place(csv_path: str, profile: str) -> tuple[Callable, Callable]:
    """Subcategory and labels of a table beyond the thesis. Its number is in the sidecar its stage writes, so
    they are read when the report is made (Snakemake calls report arguments that are functions then)."""
    def number() -> str:
        return json.loads(Path(csv_path).with_suffix(".json").read_text())["number"]
    return (lambda wildcards: f"Table {number()}"), (lambda wildcards: {"table": number(), "profile": profile})


def items(params: dict, profile: str, graph: list[Stage]) -> list[Item]:
    """The report items of a graph: its figures, thesis tables, tables beyond the thesis and training curves."""
    out: list[Item] = []
    curves: dict[str, list[Stage]] = {}               # experiment -> its training stages (one per run where a family trains several)
    for st in graph:
        module = st.cmd[2] if st.cmd[:2] == ["python", "-m"] else None
        if module == "stages.figures":
            fig = stage_arg(st, "--figure")
            png = next(o for o in st.outs if o.endswith(".png"))
            number = figure_number(fig, params["figures"][fig])
            out.append(Item("figure", png, f"{CAPTIONS}/{Path(png).stem}.rst", st.chapter,
                            f"Figure {number.split(' ')[0]}", {"figure": number, "profile": profile},
                            (str(Path(png).with_suffix(".json")),), _code(st)))
        elif module == "stages.tables":
            table, csv_path = stage_arg(st, "--table"), st.outs[0]
            out.append(Item("table", csv_path, f"{CAPTIONS}/{Path(csv_path).stem}.rst", st.chapter, f"Table {table}",
                            {"table": table, "profile": profile}, (csv_path, paths.REFERENCE_NUMBERS), _code(st)))
        elif st.extra.get("report_table"):
            csv_path = next(o for o in st.outs if o.endswith(".csv"))
            out.append(Item("extra", csv_path, f"{CAPTIONS}/{Path(csv_path).stem}.rst", st.chapter,
                            *_extra_place(csv_path, profile), (csv_path, str(Path(csv_path).with_suffix(".json"))),
                            _code(st)))
        if st.plots:
            curves.setdefault(stage_arg(st, "--experiment") or st.name, []).append(st)
    for exp, stages in curves.items():
        out.append(Item("curves", f"{CURVES}/{exp}.png", f"{CAPTIONS}/curves_{exp}.rst", stages[0].chapter,
                        CURVES_SUBCATEGORY, {"experiment": exp, "profile": profile},
                        tuple(p for st in stages for p in st.plots),
                        tuple(uniq(c for st in stages for c in _code(st)))))
    return out


def html_stage(profile: str, report_items: list[Item]) -> Stage:
    """The Snakemake rule that writes the items' captions and draws the training curves."""
    deps = step_code("html_report") + [paths.REFERENCE_NUMBERS]
    deps += [f for it in report_items for f in (*it.sources, *it.code)]
    outs = [it.caption for it in report_items] + [it.path for it in report_items if it.kind == "curves"]
    return Stage(name="html_report", cmd=cli("html_report", "--profile", profile), deps=deps, outs=outs, params=[],
                 digest=config_digest([profile, outs]))


# --- Captions: reStructuredText that Snakemake renders (as a Jinja template first) when it makes the report.

def _rst(text: str) -> str:
    """Plain text as reStructuredText that reads as written: inline markup characters escaped, and the first
    character too, so that text such as "1." or "- x" does not start a list."""
    text = " ".join(str(text).split())
    for ch in "\\*`_|":
        text = text.replace(ch, "\\" + ch)
    return text if not text or text.startswith("\\") else "\\" + text


def _rst_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {_rst(row[0])}"] + [f"     - {_rst(c)}" for c in row[1:]]
    return "\n".join(lines)


def _code_digest(files: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _footer(item: Item, profile: str) -> list[str]:
    from stages.report import PROFILE_MEANING

    meaning = PROFILE_MEANING.get(profile, "see its description in params.yaml")
    maker = "training stage that logged them" if item.kind == "curves" else "stage that made it"
    return [f"Profile **{_rst(profile)}**: {_rst(meaning)}.",
            f"Code version ``{_code_digest(item.code)}`` (sha256 of the {len(item.code)} source files of the {maker})."]


def caption(item: Item, profile: str) -> str:
    """The caption of one item, from what the PDF prints for it (stages.report reads the same sources)."""
    from stages import report

    if item.kind == "figure":
        meta = report.read_figure(item.path).meta
        body = [f"**Figure {_rst(meta['figure'])} — {_rst(meta['title'])}**", _rst(meta["caption"])]
        body += [f"Experiment: {_rst(meta['experiment'])}."] if meta.get("experiment") else []
    elif item.kind == "table":
        t = report.read_table(item.path)
        title = report.load_captions(paths.REFERENCE_NUMBERS).get(t.table)
        if title is None:
            raise DataError(f"table {item.path} is Table {t.table}, which {paths.REFERENCE_NUMBERS} does not describe")
        cols = [c for c in t.rows[0] if c not in ("table", "notes")]
        body = [f"**Table {_rst(t.table)} — {_rst(title)}**",
                _rst_table([c.replace("_", " ") for c in cols], [[r[c] for c in cols] for r in t.rows])]
        noted = [r for r in t.rows if r["notes"]]   # numbered as the PDF's footnotes
        body += ["\n".join(f"- [{k}] {_rst(r['dataset'])} / {_rst(r['model'])}: {_rst(r['notes'])}"
                           for k, r in enumerate(noted, start=1))] if noted else []
    elif item.kind == "extra":
        t = report.read_extra_table(item.path)
        body = [f"**Table {_rst(t.meta['number'])} (beyond the thesis) — {_rst(t.meta['title'])}**",
                _rst_table(t.header, t.rows), _rst(t.meta["caption"])]
    else:
        runs = f", {len(item.sources)} runs" if len(item.sources) > 1 else ""
        body = [f"**Training curves — {_rst(Path(item.path).stem)}**",
                _rst(f"One panel per logged quantity against the training step{runs}; logarithmic axis where a "
                     f"quantity spans more than two decades. From {', '.join(item.sources)}.")]
    # {% raw %}: Snakemake renders captions as Jinja templates; a caption's text is not one.
    return "{% raw %}\n" + "\n\n".join(body + _footer(item, profile)) + "\n{% endraw %}\n"


# --- Training curves.

def _records(path: str) -> list[dict]:
    try:
        records = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"training log {path} not found: run its training stage") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"training log {path} is not valid JSON ({exc}): rerun its training stage") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "step" in r for r in records):
        raise DataError(f"training log {path} is not a list of records with a 'step': rerun its training stage")
    return records


def draw_curves(title: str, logs: tuple[str, ...]) -> bytes:
    """One panel per logged float quantity, one line per run (a log file each, or a 'run' field)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    from stages.plotting import png_bytes

    series: dict[str, dict[str, tuple[list, list]]] = {}     # quantity -> run label -> (steps, values)
    for k, path in enumerate(logs):
        for r in _records(path):
            run = f"run {r['run']}" if "run" in r else (f"run {k}" if len(logs) > 1 else "")
            for key, value in r.items():
                if key not in NOT_CURVES and isinstance(value, float) and math.isfinite(value):
                    steps, values = series.setdefault(key, {}).setdefault(run, ([], []))
                    steps.append(r["step"])
                    values.append(value)
    cols = min(3, max(1, len(series)))
    rows = max(1, math.ceil(len(series) / cols))
    height = 0.6 + 2.2 * rows                           # inches: a title band, then the panels
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, height), squeeze=False)
    # Fixed margins rather than tight_layout, which doubled the drawing time of a report's curves.
    fig.subplots_adjust(left=0.12 if cols == 1 else 0.07, right=0.98, bottom=0.45 / height, top=1 - 0.55 / height,
                        wspace=0.3, hspace=0.6)
    for ax, (key, runs) in zip(axes.flat, sorted(series.items())):
        for run, (steps, values) in sorted(runs.items()):
            ax.plot(steps, values, linewidth=1, label=run or None)
        lo, hi = min(v for _, vs in runs.values() for v in vs), max(v for _, vs in runs.values() for v in vs)
        if 0 < lo and hi > 100 * lo:
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
        ax.locator_params(axis="x", nbins=4)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        if len(runs) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(series):]:
        ax.set_axis_off()
    if not series:
        axes.flat[0].text(0.5, 0.5, "no training records", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def main(argv=None) -> int:
    from stages.cli import load_registry, stage_parser

    params, profile = load_registry(stage_parser("html_report", __doc__).parse_args(argv))
    for item in items(params, profile, build_graph(params, profile)):
        if item.kind == "curves":
            write_bytes_atomic(item.path, draw_curves(f"{Path(item.path).stem} (profile {profile})", item.sources))
        write_bytes_atomic(item.caption, caption(item, profile).encode())
    print(f"wrote captions and training curves under {HTML_DIR}/")
    return 0


if __name__ == "__main__":
    run_cli(main)
