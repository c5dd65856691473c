"""Render reports/thesis_tables.pdf: the results tables (thesis beside ours) and the figures of one profile.

The PDF is the project's deliverable, so it must say on every page which profile produced it (smoke
numbers are not comparable to the thesis) and it must be reproducible: rendered twice from the same
inputs it is byte-identical (reportlab's invariant mode, fixed metadata, images embedded from their
bytes, never from their path). Tables are real text (selectable, searchable), laid out booktabs-style.

    python -m stages.report --profile smoke --out reports/thesis_tables.pdf \
        --table reports/tables/table_3_2.csv --figure reports/figures/fig_3_11.png

Each figure PNG needs a JSON sidecar beside it (fig_3_11.json: figure, title, caption, experiment).
Tables beyond the thesis (no thesis column) come with --extra-table X.csv: any header + rows, and a JSON
sidecar X.json with number, title and caption; they are rendered as plain text tables after the thesis tables.
Table titles come from the `tables:` captions of the reference numbers (--reference).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import yaml
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (BaseDocTemplate, Frame, Image, KeepTogether, NextPageTemplate, PageBreak,
                                PageTemplate, Paragraph, Spacer, Table, TableStyle)

from stages import paths
from stages.errors import ConfigError, DataError, run_cli, write_bytes_atomic
from stages.registry import safe_load
from stages.tables import DASH, STATUS_NOT_RERUN, STATUS_NOT_RUN, STATUS_OURS

THESIS = "M. Chen, Learning with Weak Supervision Using Deep Generative Networks, Sorbonne Université, 2020"
PROFILE_MEANING = {
    "smoke": "embedded data, tiny models, CPU — numbers are NOT comparable to the thesis",
    "ci": "smaller than smoke, for the end-to-end test of the pipeline — numbers are NOT comparable to the thesis",
    "cpu": "embedded data, models sized for about an hour of 2 CPU cores per chapter — NOT comparable to the thesis",
    "paper": "thesis hyper-parameters and real datasets",
    "paper-released": "the authors' released weights (imported, not trained) evaluated on the real datasets",
}
COMPARABLE_PROFILES = ("paper", "paper-released")  # numbers that may stand beside the thesis's
# What an "ours" cell shows for rows we have no number for (the legend explains each).
OURS_PLACEHOLDER = {STATUS_NOT_RUN: "not run", STATUS_NOT_RERUN: "not re-run"}

MARGIN = 15 * mm
FONT, BOLD, ITALIC = "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
CELL_SIZE, PAD = 8, 4
FIGURE_SIDECAR_KEYS = ("figure", "title", "caption")

_S = {
    "title": ParagraphStyle("title", fontName=BOLD, fontSize=26, leading=32, spaceAfter=12),
    "h1": ParagraphStyle("h1", fontName=BOLD, fontSize=13, leading=16, spaceAfter=6, keepWithNext=1),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=10, leading=13, spaceAfter=6),
    "small": ParagraphStyle("small", fontName=FONT, fontSize=8, leading=10, spaceAfter=2),
    "cell": ParagraphStyle("cell", fontName=FONT, fontSize=CELL_SIZE, leading=CELL_SIZE + 2),
    "head": ParagraphStyle("head", fontName=BOLD, fontSize=CELL_SIZE, leading=CELL_SIZE + 2, alignment=1),
}


@dataclass
class ResultsTable:
    path: Path
    table: str
    columns: list[str]          # metric column keys, in thesis order
    rows: list[dict[str, str]]


@dataclass
class FigureInput:
    png: bytes
    meta: dict


def read_table(path: str | Path) -> ResultsTable:
    """A CSV written by stages.tables, checked for the columns the layout needs."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header, rows = list(reader.fieldnames or []), list(reader)
    except FileNotFoundError:
        raise DataError(f"table {path} not found: run its table stage (python -m stages.tables)")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"table {path} is not a readable CSV ({exc}): re-run its table stage")
    middle = header[3:-2]
    columns = [c[: -len("_thesis")] for c in middle[::2]]
    if (header[:3] != ["table", "dataset", "model"] or header[-2:] != ["status", "notes"] or not middle
            or middle != [f"{c}_{half}" for c in columns for half in ("thesis", "ours")]):
        raise DataError(f"table {path} does not have the columns written by stages.tables: re-run its table stage")
    if not rows:
        raise DataError(f"table {path} has no rows: re-run its table stage")
    tables = {r["table"] for r in rows}
    bad = {r["status"] for r in rows} - {STATUS_OURS, *OURS_PLACEHOLDER}
    if len(tables) != 1 or bad or any(None in r.values() for r in rows):
        raise DataError(f"table {path} is malformed (mixed tables, unknown status or short rows): "
                        "re-run its table stage")
    return ResultsTable(path, tables.pop(), columns, rows)


@dataclass
class ExtraTable:
    header: list[str]
    rows: list[list[str]]
    meta: dict                  # number, title, caption


EXTRA_SIDECAR_KEYS = ("number", "title", "caption")


def _read_sidecar(sidecar: Path, keys, what: str, role: str, fix: str) -> dict:
    """The JSON sidecar of a figure or table: a dict with string values for ``keys``, else DataError."""
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise DataError(f"{what} not found ({role}): {fix}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} is not valid JSON ({exc}): {fix}")
    if not isinstance(meta, dict) or any(not isinstance(meta.get(k), str) for k in keys):
        raise DataError(f"{what} needs string keys {', '.join(keys)}: {fix}")
    return meta


def read_extra_table(path: str | Path) -> ExtraTable:
    """A table beyond the thesis: a CSV (header + rows of text cells) and its JSON sidecar."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
    except FileNotFoundError:
        raise DataError(f"table {path} not found: run the stage that writes it")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"table {path} is not a readable CSV ({exc}): re-run the stage that writes it")
    if len(lines) < 2 or any(len(r) != len(lines[0]) for r in lines):
        raise DataError(f"table {path} needs a header and rows of the same width: re-run the stage that writes it")
    meta = _read_sidecar(sidecar, EXTRA_SIDECAR_KEYS, f"table sidecar {sidecar}", f"title of {path}",
                         "re-run the stage that writes it")
    return ExtraTable(lines[0], lines[1:], meta)


def _beyond(t: ExtraTable) -> str:
    """Label of a table rendered from a CSV: a thesis table (sidecar ``thesis_table: true``, e.g. Table 4.2's
    dataset statistics, thesis beside ours) or one beyond the thesis."""
    return "" if t.meta.get("thesis_table") is True else " (beyond the thesis)"


def _extra_table_flowables(t: ExtraTable, width: float) -> list:
    head = [_p(h, "head") for h in t.header]
    body = [[_p(c, "cell") for c in r] for r in t.rows]
    style = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), CELL_SIZE),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LINEABOVE", (0, 0), (-1, 0), 1.2, colors.black), ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
             ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.black)]
    col_w = width / len(t.header)
    return [NextPageTemplate("landscape"), PageBreak(),
            _p(f"Table {t.meta['number']}{_beyond(t)} — {t.meta['title']}", "h1"),
            Table([head, *body], colWidths=[col_w] * len(t.header), repeatRows=1, style=TableStyle(style),
                  hAlign="LEFT"),
            Spacer(1, 4), _p(t.meta["caption"], "small")]


def read_figure(png: str | Path) -> FigureInput:
    """A figure PNG and its JSON sidecar (same name, .json)."""
    png = Path(png)
    sidecar = png.with_suffix(".json")
    try:
        data = png.read_bytes()
        ImageReader(io.BytesIO(data)).getSize()
    except FileNotFoundError:
        raise DataError(f"figure {png} not found: run its figure stage (python -m stages.figures)")
    except Exception as exc:                       # PIL raises many kinds on a corrupt image
        raise DataError(f"figure {png} is not a readable image ({exc}): re-run its figure stage")
    meta = _read_sidecar(sidecar, FIGURE_SIDECAR_KEYS, f"figure sidecar {sidecar}", f"caption of {png}",
                         "re-run its figure stage")
    return FigureInput(data, meta)


def load_captions(path: str | Path) -> dict[str, str]:
    path = Path(path)
    try:
        ref = safe_load(path.read_text())
        return {str(k): str(v["caption_short"]) for k, v in ref["tables"].items()}
    except FileNotFoundError:
        raise DataError(f"reference numbers {path} not found: restore it from version control")
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"reference numbers {path} are malformed ({exc}): restore it from version control")


def _p(text: str, style: str = "body") -> Paragraph:
    return Paragraph(escape(text), _S[style])


def _chunks(widths: list[float], room: float) -> list[list[int]]:
    """Split metric columns (by index) into groups whose widths fit ``room``, so wide tables stay legible."""
    groups, cur, used = [], [], 0.0
    for i, w in enumerate(widths):
        if cur and used + w > room:
            groups.append(cur)
            cur, used = [], 0.0
        cur.append(i)
        used += w
    return groups + [cur]


def _table_flowables(t: ResultsTable, caption: str, profile: str, width: float) -> list:
    noted = [r for r in t.rows if r["notes"]]                    # footnote k is noted[k - 1]
    note_of = {id(r): k for k, r in enumerate(noted, start=1)}

    def subjects(r: dict) -> set[str]:  # a note starts with the metric it is about, or is about the row
        return {n.split(" ", 1)[0] for n in r["notes"].split("; ")} if r["notes"] else set()

    def ours(r: dict, col: str) -> str:
        if r["status"] != STATUS_OURS:
            return OURS_PLACEHOLDER[r["status"]]
        value = r[f"{col}_ours"]
        return f"{value} [{note_of[id(r)]}]" if col in subjects(r) else value

    def model(r: dict) -> str:          # a note about the whole row (not one metric) marks the model name
        return f"{r['model']} [{note_of[id(r)]}]" if subjects(r) - set(t.columns) else r["model"]

    cells = [[(r[f"{c}_thesis"], ours(r, c)) for c in t.columns] for r in t.rows]

    def col_width(i: int, half: int) -> float:
        texts = ["thesis", "ours"][half:half + 1] + [row[i][half] for row in cells]
        return max(stringWidth(s, FONT, CELL_SIZE) for s in texts) + 2 * PAD

    pair_w = []
    for i, col in enumerate(t.columns):   # widen a pair when its header's longest word needs it
        thesis_w, ours_w = col_width(i, 0), col_width(i, 1)
        word_w = max(stringWidth(w, BOLD, CELL_SIZE) for w in col.replace("_", " ").split()) + 2 * PAD + 4
        extra = max(0.0, word_w - thesis_w - ours_w) / 2
        pair_w.append((thesis_w + extra, ours_w + extra))
    ds_w, model_w = min(32 * mm, 0.2 * width), min(30 * mm, 0.18 * width)
    groups = _chunks([a + b for a, b in pair_w], width - ds_w - model_w)
    out: list = [NextPageTemplate("landscape"), PageBreak()]
    for g, group in enumerate(groups):
        part = f" (columns {g + 1}/{len(groups)})" if len(groups) > 1 else ""
        out.append(_p(f"Table {t.table} — {caption}{part}", "h1"))
        head = [["", ""], [_p("Dataset", "head"), _p("Model", "head")]]
        style = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), CELL_SIZE),
                 ("ALIGN", (2, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                 ("LEFTPADDING", (0, 0), (-1, -1), PAD), ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
                 ("LINEABOVE", (0, 0), (-1, 0), 1.2, colors.black),              # top rule
                 ("LINEBELOW", (0, 1), (-1, 1), 0.5, colors.black),              # mid rule
                 ("LINEBELOW", (0, -1), (-1, -1), 1.2, colors.black),            # bottom rule
                 ("LINEBELOW", (0, "splitlast"), (-1, "splitlast"), 1.2, colors.black)]
        for j, i in enumerate(group):
            c = 2 + 2 * j
            head[0] += [_p(t.columns[i].replace("_", " "), "head"), ""]
            head[1] += ["thesis", "ours"]
            style += [("SPAN", (c, 0), (c + 1, 0)),
                      ("LINEBELOW", (c, 0), (c + 1, 0), 0.4, colors.black, None, None, 2, 2)]  # cmidrule
        body = []
        for k, r in enumerate(t.rows):
            first = k == 0 or t.rows[k - 1]["dataset"] != r["dataset"]
            line = [_p(r["dataset"], "cell") if first else "", _p(model(r), "cell")]
            for j, i in enumerate(group):
                line += list(cells[k][i])
                if r["status"] != STATUS_OURS:
                    style.append(("TEXTCOLOR", (3 + 2 * j, k + 2), (3 + 2 * j, k + 2), colors.grey))
            if first and k:
                style.append(("LINEABOVE", (0, k + 2), (-1, k + 2), 0.25, colors.grey))
            body.append(line)
        widths = [ds_w, model_w] + [w for i in group for w in pair_w[i]]
        out += [Table(head + body, colWidths=widths, repeatRows=2, style=TableStyle(style), hAlign="LEFT"),
                Spacer(1, 4)]
    legend = [_p(f"thesis: number printed in the thesis; ours: this run (profile {profile}"
                 + ("; NOT comparable to the thesis" if profile not in COMPARABLE_PROFILES else "") + ").", "small"),
              _p("not run: no metrics from this profile for this row (experiment not in the graph or not finished).",
                 "small"),
              _p("not re-run: reported in the thesis, not re-run here (baselines from pretrained releases or "
                 "trained with their authors' code, see catalog §2.4).", "small"),
              _p(f"{DASH}: not reported in the thesis (or, in an ours cell, not computed for that reason).", "small")]
    legend += [_p(f"[{k}] {r['dataset']} / {r['model']}: {r['notes']}", "small")
               for k, r in enumerate(noted, start=1)]
    return out + [KeepTogether(legend)]


def _figure_flowables(fig: FigureInput, frame_w: float, frame_h: float) -> list:
    iw, ih = ImageReader(io.BytesIO(fig.png)).getSize()
    scale = min(frame_w / iw, (frame_h - 60 * mm) / ih)
    meta = fig.meta
    out = [PageBreak(), _p(f"Figure {meta['figure']} — {meta['title']}", "h1"),
           Image(io.BytesIO(fig.png), width=iw * scale, height=ih * scale), Spacer(1, 6),
           _p(meta["caption"], "body")]
    if meta.get("experiment"):
        out.append(_p(f"Experiment: {meta['experiment']}", "small"))
    return out


def render(profile: str, tables: list[ResultsTable], captions: dict[str, str], figures: list[FigureInput],
           extra_tables: list[ExtraTable] = (), unbuilt_figures: list[str] = ()) -> bytes:
    """The whole PDF as bytes: identical bytes for identical inputs."""
    def footer(canvas, doc):
        w, _ = canvas._pagesize
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.drawCentredString(w / 2, MARGIN / 2, f"weakgen — profile: {profile} — page {doc.page}")
        canvas.restoreState()

    templates = []
    for name, size in (("portrait", A4), ("landscape", landscape(A4))):
        frame = Frame(MARGIN, MARGIN, size[0] - 2 * MARGIN, size[1] - 2 * MARGIN, id=name)
        templates.append(PageTemplate(id=name, frames=[frame], onPage=footer, pagesize=size))
    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=A4, pageTemplates=templates, invariant=1,
                          title=f"weakgen — thesis tables (profile {profile})", author="weakgen",
                          subject=f"Reproduction of {THESIS}", creator="weakgen stages.report",
                          producer="weakgen (reportlab)", keywords="", leftMargin=MARGIN, rightMargin=MARGIN,
                          topMargin=MARGIN, bottomMargin=MARGIN)
    meaning = PROFILE_MEANING.get(profile, "see its description in params.yaml")
    story: list = [Spacer(1, 40 * mm), _p("weakgen", "title"),
                   _p("Results tables and figures reproducing the experiments of the thesis"),
                   _p(THESIS), Spacer(1, 10 * mm), Paragraph(f"<b>Profile: {escape(profile)}</b>", _S["body"]),
                   _p(f"{profile}: {meaning}"), Spacer(1, 10 * mm), _p("Contents", "h1")]
    story += [_p(f"Table {t.table} — {captions[t.table]}") for t in tables]
    story += [_p(f"Table {t.meta['number']}{_beyond(t)} — {t.meta['title']}") for t in extra_tables]
    story += [_p(f"Figure {f.meta['figure']} — {f.meta['title']}") for f in figures]
    if unbuilt_figures:
        story += [_p("Figures not built in this profile", "h1")]
        for line in unbuilt_figures:
            number, title, reason = line.split("|", 2)
            story += [_p(f"Figure {number} — {title} ({reason})")]
    for t in tables:
        story += _table_flowables(t, captions[t.table], profile, landscape(A4)[0] - 2 * MARGIN - 12)
    for t in extra_tables:
        story += _extra_table_flowables(t, landscape(A4)[0] - 2 * MARGIN - 12)
    if figures:
        story += [NextPageTemplate("portrait")]
        for f in figures:
            story += _figure_flowables(f, A4[0] - 2 * MARGIN - 12, A4[1] - 2 * MARGIN)
    doc.build(story)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", default=paths.REPORT)
    ap.add_argument("--table", action="append", default=[], help="CSV from stages.tables (repeatable)")
    ap.add_argument("--figure", action="append", default=[], help="figure PNG with a .json sidecar (repeatable)")
    ap.add_argument("--extra-table", action="append", default=[],
                    help="table beyond the thesis: CSV with a .json sidecar (number, title, caption) (repeatable)")
    ap.add_argument("--unbuilt-figure", action="append", default=[], metavar="NUMBER|TITLE|REASON",
                    help="a figure this profile does not draw, listed in the contents with why (repeatable)")
    ap.add_argument("--reference", default=paths.REFERENCE_NUMBERS, help="reference numbers (table captions)")
    args = ap.parse_args(argv)

    tables = [read_table(p) for p in args.table]
    figures = [read_figure(p) for p in args.figure]
    captions = load_captions(args.reference) if tables else {}
    for t in tables:
        if t.table not in captions:
            raise ConfigError(f"table {t.path} is Table {t.table}, which {args.reference} does not describe")
    extras = [read_extra_table(p) for p in args.extra_table]
    for line in args.unbuilt_figure:
        if line.count("|") < 2:
            raise ConfigError(f"--unbuilt-figure {line!r}: expected NUMBER|TITLE|REASON")
    write_bytes_atomic(args.out, render(args.profile, tables, captions, figures, extras, args.unbuilt_figure))
    return 0


if __name__ == "__main__":
    run_cli(main)
