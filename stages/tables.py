"""Build one thesis results table as CSV: the thesis's number beside ours, cell by cell.

The rows (dataset, model), their order and the metric columns all come from the reference numbers
(reference/thesis_numbers.yaml) for the requested table, so the same code serves Table 3.2, Table 5.4 or
Table 4.1: the thesis layout is the single source of truth, and our metrics.json files only fill the
"ours" half. A row the thesis reports but this project does not re-run says so explicitly instead of
showing an empty cell that would read as "missing".

    python -m stages.tables --table 3.2 --profile smoke --out reports/tables/table_3_2.csv \
        --metrics results/smoke/srvp-smmnist/metrics.json --expect "SM-MNIST (Stochastic Moving MNIST)|SRVP (ours)"

CSV columns: table, dataset, model, then ``<COL>_thesis`` and ``<COL>_ours`` per metric column (COL is the
metric, suffixed with the thesis qualifier when one metric has several columns, e.g. ``Acc_train``),
then ``status`` (ours | not run | reported, not re-run) and ``notes`` (why a metric of ours is unavailable,
which pretrained weights produced a learned metric such as FVD, and, when the metrics file has a top-level
``weights_source``, the released model weights the row was computed from instead of our training).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from stages import chapters, paths
from stages.errors import ConfigError, DataError, atomic_path, run_cli
from stages.registry import safe_load

DASH = "—"
STATUS_OURS = "ours"
STATUS_NOT_RUN = "not run"
STATUS_NOT_RERUN = "reported, not re-run"
METRIC_STATUSES = ("ok", "unavailable", "not_reported")

FALLBACK_DECIMALS = 3  # for our numbers when neither the thesis nor the table's chapter gives a precision


@dataclass(frozen=True)
class Cell:
    """One thesis number: its display string and the precision it was printed with."""
    display: str
    decimals: int | None          # None when the thesis prints a dash


@dataclass
class ThesisTable:
    table: str
    columns: list[str]                                  # metric column keys, in thesis order
    rows: list[tuple[str, str]]                         # (dataset, model), in thesis order
    cells: dict[tuple[str, str, str], Cell]             # (dataset, model, column) -> thesis cell
    metric_of: dict[str, str]                           # column key -> metric name


def _clean_raw(raw: str) -> str:
    text = re.sub(r"</?(b|math)>", "", str(raw)).replace("$", "").replace(r"\pm", "±")
    return " ".join(text.split())


def _decimals(raw: str) -> int:
    m = re.search(r"\d+(?:\.(\d+))?", _clean_raw(raw))
    return len(m.group(1) or "") if m else FALLBACK_DECIMALS


def load_reference(path: str | Path, table: str) -> ThesisTable:
    """Rows, columns and thesis cells of ``table``, in the order the thesis prints them."""
    path = Path(path)
    try:
        ref = safe_load(path.read_text())
        numbers, tables = ref["numbers"], ref["tables"]
    except FileNotFoundError:
        raise DataError(f"reference numbers {path} not found: restore it from version control")
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise DataError(f"reference numbers {path} are malformed ({exc}): restore the file from version control")
    if table not in tables:
        raise ConfigError(f"--table {table!r} is not a thesis table in {path}; known: {', '.join(sorted(tables))}")
    columns: dict[str, str] = {}
    rows: dict[tuple[str, str], None] = {}
    cells: dict[tuple[str, str, str], Cell] = {}
    for e in numbers:
        if e.get("table") != table:
            continue
        ds, model, metric = e["dataset"], e["model"], e["metric"]
        prefix = f"{table}|{ds}|{model}|{metric}"
        qualifier = e["id"][len(prefix):].lstrip("|") if e["id"].startswith(prefix) else ""
        col = f"{metric}_{qualifier}" if qualifier else metric
        columns.setdefault(col, metric)
        rows.setdefault((ds, model))
        if e.get("value") is None:
            cells[(ds, model, col)] = Cell(DASH, None)
        else:
            cells[(ds, model, col)] = Cell(_clean_raw(e["raw"]), _decimals(e["raw"]))
    return ThesisTable(table, list(columns), list(rows), cells, columns)


def load_metrics(path: str | Path) -> dict:
    """A validated metrics.json written by the evaluate stage; DataError naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"metrics file {path} not found: run the evaluate stage of its experiment")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"metrics file {path} is not valid JSON ({exc}): re-run the evaluate stage")

    def need(obj, key, where, kind=None):
        if not isinstance(obj, dict) or key not in obj:
            raise DataError(f"metrics file {path} lacks '{where}{key}': re-run the evaluate stage")
        if kind is not None and not isinstance(obj[key], kind):
            raise DataError(f"metrics file {path}: '{where}{key}' has the wrong type: re-run the evaluate stage")
        return obj[key]

    for key in ("experiment", "profile"):
        need(data, key, "", str)
    report = need(data, "report", "", dict)
    for key in ("table", "dataset", "model"):
        need(report, key, "report.", str)
    metrics = need(data, "metrics", "", dict)
    for name, entry in metrics.items():
        status = need(entry, "status", f"metrics.{name}.")
        if status not in METRIC_STATUSES:
            raise DataError(f"metrics file {path}: metrics.{name}.status is {status!r}, "
                            f"expected one of {', '.join(METRIC_STATUSES)}")
        if status == "ok":
            mean = need(entry, "mean", f"metrics.{name}.", (int, float))
            ci = entry.get("ci95")
            if ci is not None and not isinstance(ci, (int, float)):
                raise DataError(f"metrics file {path}: metrics.{name}.ci95 must be a number or null")
            if not math.isfinite(mean) or (ci is not None and not math.isfinite(ci)):
                raise DataError(f"metrics file {path}: metrics.{name} is not finite: re-run the evaluate stage")
        elif status == "unavailable":
            need(entry, "reason", f"metrics.{name}.", str)
    return data


def _format(mean: float, ci: float | None, decimals: int) -> str:
    text = f"{mean + 0.0:.{decimals}f}"
    return text if ci is None else f"{text} ± {ci + 0.0:.{decimals}f}"


def _column_decimals(ref: ThesisTable, col: str) -> int:
    seen = [c.decimals for (_, _, k), c in ref.cells.items() if k == col and c.decimals is not None]
    if seen:
        return max(set(seen), key=seen.count)
    return chapters.table_format(ref.table).decimals.get(ref.metric_of[col], FALLBACK_DECIMALS)


def _protocol_note(protocol) -> list[str]:
    """Say how many samples and sequences our number used: the caption gives the paper's counts."""
    if not isinstance(protocol, dict):
        return []
    if protocol.get("spread") == "std":  # chapter 5: the ± of our cells is a std over runs, like the thesis's
        runs = protocol.get("runs")
        return [f"ours: mean ± std over {runs} runs" if runs and runs > 1 else "ours: a single run (no spread)"]
    samples, sequences = protocol.get("n_samples"), protocol.get("n_sequences")
    if not (isinstance(samples, int) and isinstance(sequences, int)):
        return []
    return [f"ours: best of {samples} samples per test sequence, {sequences} test sequences"]


def build_table(ref: ThesisTable, profile: str, metrics: dict[str, dict],
                expect: list[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """CSV header and rows. ``metrics`` maps each metrics file path to its loaded content."""
    ours: dict[tuple[str, str], tuple[str, dict]] = {}
    for path, data in sorted(metrics.items()):
        rep = data["report"]
        if rep["table"] != ref.table:
            raise DataError(f"metrics file {path} belongs to Table {rep['table']}, not Table {ref.table}: "
                            f"pass it to the table_{rep['table'].replace('.', '_')} stage")
        if data["profile"] != profile:
            raise DataError(f"metrics file {path} was computed for profile {data['profile']!r}, not {profile!r}")
        key = (rep["dataset"], rep["model"])
        if key not in ref.rows:
            raise DataError(f"metrics file {path}: report.dataset/model {key[0]!r}|{key[1]!r} is not a row of "
                            f"Table {ref.table}; rows: {'; '.join('|'.join(r) for r in ref.rows)}")
        if key in ours:
            raise DataError(f"metrics files {ours[key][0]} and {path} both fill row {'|'.join(key)}")
        missing = [c for c in ref.columns if c not in data["metrics"]]
        if missing:
            raise DataError(f"metrics file {path} lacks metrics {', '.join(missing)} of Table {ref.table} "
                            "(write status not_reported for metrics the thesis does not report)")
        ours[key] = (path, data)
    for key in expect:
        if key not in ref.rows:
            raise ConfigError(f"--expect {'|'.join(key)!r} is not a row of Table {ref.table}; "
                              f"rows: {'; '.join('|'.join(r) for r in ref.rows)}")

    header = ["table", "dataset", "model"]
    for col in ref.columns:
        header += [f"{col}_thesis", f"{col}_ours"]
    header += ["status", "notes"]
    out = []
    for ds, model in ref.rows:
        row, notes = [ref.table, ds, model], []
        found = ours.get((ds, model))
        if found:
            notes += _protocol_note(found[1].get("protocol"))
            if isinstance(found[1].get("note"), str):   # a row-level remark of the experiment (e.g. "our port ...")
                notes.append(found[1]["note"])
            if found[1].get("weights_source"):  # imported released weights (stages.import_weights), not trained
                notes.append(f"model: {found[1]['weights_source']}")
        for col in ref.columns:
            cell = ref.cells.get((ds, model, col), Cell(DASH, None))
            value = ""
            if found:
                entry = found[1]["metrics"][col]
                if entry["status"] == "ok":
                    dec = cell.decimals if cell.decimals is not None else _column_decimals(ref, col)
                    value = _format(entry["mean"], entry.get("ci95"), dec)
                    if entry.get("weights"):  # name the pretrained network behind a learned metric
                        notes.append(f"{col} computed with {entry['weights']}")
                    interval = f"± = {entry['interval']}" if entry.get("interval") else None
                    if interval and interval not in notes:   # what the ± means when it is not a std over runs
                        notes.append(interval)
                elif entry["status"] == "unavailable":
                    value = "n/a"
                    notes.append(f"{col} unavailable: {entry['reason']}")
                else:
                    value = DASH
            row += [cell.display, value]
        if found:
            status = STATUS_OURS
        elif (ds, model) in chapters.table_format(ref.table).not_rerun and (ds, model) not in expect:
            status = STATUS_NOT_RERUN
        else:
            status = STATUS_NOT_RUN
        out.append(row + [status, "; ".join(notes)])
    return header, out


def write_csv(path: str | Path, header: list[str], rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)


def _parse_expect(text: str) -> tuple[str, str]:
    ds, sep, model = text.rpartition("|")
    if not sep or not ds or not model:
        raise ConfigError(f"--expect {text!r} must be 'DATASET|MODEL' as in the reference numbers")
    return ds, model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.tables", description=__doc__.splitlines()[0])
    ap.add_argument("--table", required=True, help="thesis table id, e.g. 3.2")
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", required=True, help="CSV to write, e.g. reports/tables/table_3_2.csv")
    ap.add_argument("--metrics", action="append", default=[],
                    help="metrics.json of one experiment (repeatable). Only the files named here are read, so the "
                         "table depends on exactly the inputs the orchestrators declare")
    ap.add_argument("--expect", action="append", default=[], help="'DATASET|MODEL' row this profile runs (repeatable)")
    ap.add_argument("--reference", default=paths.REFERENCE_NUMBERS)
    args = ap.parse_args(argv)

    ref = load_reference(args.reference, args.table)
    expect = [_parse_expect(e) for e in args.expect]
    metrics: dict[str, dict] = {}
    for path in args.metrics:
        if not Path(path).exists():      # an expected experiment that has not run yet: its row says so
            print(f"warning: {path} not found; its row is marked '{STATUS_NOT_RUN}'", file=sys.stderr)
            continue
        metrics[path] = load_metrics(path)
    header, rows = build_table(ref, args.profile, metrics, expect)
    write_csv(args.out, header, rows)
    return 0


if __name__ == "__main__":
    run_cli(main)
