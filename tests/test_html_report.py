"""Snakemake's HTML report: every figure, results table and training curve of a graph is a result, grouped by
chapter and thesis number, with the caption the PDF prints and the profile; building it after the PDF leaves
the PDF alone. The end-to-end part builds a ci graph cut down to experiments that still make every kind of
result (figures, a thesis table, a table beyond the thesis, training curves of a multi-run experiment)."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docutils.core import publish_parts

from stages import chapters
from stages.graph import build_graph
from stages.html_report import _rst, draw_curves, items
from stages.registry import load_params
from stages.report import load_captions, read_extra_table
from tests.conftest import ROOT, copy_project, edit_params, run

PROFILE = "ci"
# Chapter 3.1 (Figs 3.5, 3.6, Table B.1) and chapter 5 (Table 5.4, Figs 5.4 and 5.8, ReDO's two runs).
KEEP = {"mvbigan-mnist-4views", "mvbigan-mnist-4views-nokl", "redo-flowers"}


def snakemake(project, *args):
    exe = str(Path(sys.executable).parent / "snakemake")
    return run([exe, "--cores", "2", *args, "--config", f"profile={PROFILE}"], cwd=project)


def _only_kept(params):
    for name, exp in params["experiments"].items():
        if name not in KEEP:
            exp["profiles_enabled"] = [p for p in exp.get("profiles_enabled", params["profiles"]) if p != PROFILE]


def _page_var(page: str, name: str):
    """A JSON object that Snakemake's report page defines in a <script> (the page's libraries define others)."""
    return json.loads(re.search(rf"^\s*var {name} = (\{{.*\}});$", page, flags=re.M).group(1))


def _text(caption_html: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", caption_html)).split())


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- Without a build.

def test_every_figure_table_and_training_log_of_the_graph_is_an_item_of_its_chapter():
    params = load_params(ROOT / "params.yaml")
    graph = build_graph(params, "smoke")
    by_path = {it.path: it for it in items(params, "smoke", graph)}
    titles = {ch.title for ch in chapters.chapters()}
    for st in graph:
        results = [o for o in st.outs if o.startswith("reports/") and o.endswith((".png", ".csv"))]
        for out in results:
            assert out in by_path, f"{out} of {st.name} is not in the HTML report"
            assert by_path[out].category == st.chapter and (st.chapter in titles or st.name == "table_claims")
        if st.plots:
            exp = st.cmd[st.cmd.index("--experiment") + 1]
            curves = by_path[f"reports/html/curves/{exp}.png"]
            assert set(st.plots) <= set(curves.sources) and curves.category == st.chapter
    assert by_path["reports/figures/fig_5_4_cub.png"].subcategory == "Figure 5.4"
    assert by_path["reports/tables/table_3_2.csv"].subcategory == "Table 3.2"
    assert len(by_path["reports/html/curves/redo-flowers.png"].sources) == 2          # one log per run


def test_caption_text_reads_as_written_once_rendered():
    for text in ["p_H(z|v) with *k* views, `code`, a\\b", "1. not a list", "- nor this", "", "5.4 (CUB)"]:
        body = publish_parts(_rst(text), writer="html")["body"]
        assert _text(body) == text


def test_training_curves_are_deterministic_pngs(tmp_path):
    logs = []
    for run_id in range(2):
        log = tmp_path / f"run{run_id}.json"
        log.write_text(json.dumps([{"step": s, "loss": 1.0 / s + run_id, "it_per_s": 3.0, "n": 2} for s in (1, 2, 3)]))
        logs.append(str(log))
    png = draw_curves("toy", tuple(logs))
    assert png.startswith(b"\x89PNG") and png == draw_curves("toy", tuple(logs))


# --- End to end (ci profile, cut down).

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("html_report") / "project")
    edit_params(project, _only_kept)
    snakemake(project, "reports/thesis_tables.pdf")
    pdf = project / "reports/thesis_tables.pdf"
    before = (pdf.read_bytes(), pdf.stat().st_mtime_ns)
    proc = snakemake(project, "html_report")
    ran = set(re.findall(r"^(?:local)?rule (\w+):$", proc.stdout + proc.stderr, flags=re.M))
    assert ran == {"html_report"}, f"the HTML report's rule reran other stages: {ran}"
    snakemake(project, "--report", "reports/report.html")
    assert (pdf.read_bytes(), pdf.stat().st_mtime_ns) == before, "building the HTML report changed the PDF"
    return project


@pytest.mark.slow
def test_the_report_has_every_result_with_the_pdfs_caption(built):
    page = (built / "reports/report.html").read_text()
    results, categories = _page_var(page, "results"), _page_var(page, "categories")
    params = load_params(built / "params.yaml")
    graph = build_graph(params, PROFILE)
    captions = load_captions(built / "reference/thesis_numbers.yaml")
    expected: dict[str, list[str]] = {}          # result -> texts its caption must hold
    for st in graph:
        if st.name.startswith("figure_"):
            png = next(o for o in st.outs if o.endswith(".png"))
            meta = json.loads((built / png).with_suffix(".json").read_text())
            expected[png] = [meta["title"], meta["caption"]]
        elif st.name.startswith("table_") and not st.extra.get("report_table"):
            table = st.cmd[st.cmd.index("--table") + 1]
            expected[st.outs[0]] = [f"Table {table}", captions[table]]
        elif st.extra.get("report_table"):
            csv = next(o for o in st.outs if o.endswith(".csv"))
            meta = read_extra_table(built / csv).meta
            expected[csv] = [meta["title"], meta["caption"]]
        for log in st.plots:
            expected.setdefault(f"reports/html/curves/{Path(log).parts[2]}.png", ["Training curves", log])
    assert {"reports/figures/fig_3_5.png", "reports/tables/table_5_4.csv",
            "reports/tables/extra_mvbigan_diversity.csv", "reports/html/curves/redo-flowers.png"} <= set(expected)
    assert set(results) == set(expected)
    for path, texts in expected.items():
        caption = _text(results[path]["caption"])
        for text in [*texts, f"Profile {PROFILE}"]:
            assert _flat(text) in caption, f"{path}: caption lacks {text!r}"
    placed = {path: (cat, sub) for cat, subs in categories.items() for sub, paths in subs.items() for path in paths}
    assert placed["reports/figures/fig_3_5.png"] == ("3.1 MV-BiGAN: multi-view BiGAN", "Figure 3.5")
    assert placed["reports/tables/extra_mvbigan_diversity.csv"][1] == "Table B.1"
    assert placed["reports/html/curves/redo-flowers.png"] == (
        "5 ReDO: unsupervised object segmentation by redrawing", "Training curves")
    assert all(r["job_properties"]["rule"] and "digest=" in r["job_properties"]["params"] for r in results.values())


@pytest.mark.slow
def test_the_report_opens_offline_in_a_browser(built):
    if not any(shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("Chromium is not installed (apt-get install chromium): the browser check did not run")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/html_report_check.py"), "reports/report.html"],
                          cwd=built, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    seen = json.loads(proc.stdout)
    assert seen["images"] == seen["images_shown"] > 0 and seen["network_requests"] == []
    assert seen["captions_shown"] == seen["results"]
