"""The chapter contract: a chapter kept outside stages/ (tests/toy_chapter, one family, dataset, figure
kind and table format) is registered with one line (here WEAKGEN_CHAPTERS) and every generic part picks
it up: schema validation, the graph, dvc.yaml export, the Snakefile, the dispatchers and the tables."""
from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project, edit_params, run, stage_env

TOY = {
    "datasets": {"toyset": {"description": "toy points", "base": {"n": 16, "seed": 3}}},
    "experiments": {"toy-exp": {"model": "toy", "dataset": "toyset",
                                "report": {"table": "4.1", "dataset": "Emilya", "model": "Seq2Seq"},
                                "base": {"model": {"scale": 2.0}, "train": {"steps": 1}}}},
    "figures": {"fig-4-99": {"kind": "toy-plot", "title": "Toy tiles", "experiments": {"main": "toy-exp"},
                             "shade": 200}},
}


def _add_toy(params):
    # The toy stands in for the chapter that fills Table 4.1: the motion chapter's own rows leave the copy, so
    # the table stage reads the toy's metrics only (and the test trains no motion model).
    for exp in [e for e, spec in params["experiments"].items() if spec.get("model") == "motion"]:
        del params["experiments"][exp]
    params["figures"] = {f: s for f, s in params["figures"].items() if not s["kind"].startswith("motion")}
    for section, entries in TOY.items():
        params[section].update(entries)


@pytest.fixture
def toy(tmp_path) -> Path:
    project = copy_project(tmp_path / "toy")
    shutil.copytree(ROOT / "tests" / "toy_chapter", project / "toy_chapter",
                    ignore=shutil.ignore_patterns("__pycache__"))
    edit_params(project, _add_toy)
    return project


def _run(project, cmd, check=True, chapters="toy_chapter"):
    env = {**stage_env(), "WEAKGEN_CHAPTERS": chapters}
    import subprocess

    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _bin(name):
    return str(Path(sys.executable).parent / name)


def test_toy_chapter_runs_through_every_generic_part(toy):
    dvc = _run(toy, [sys.executable, "-m", "stages.export_dvc", "--profile", "ci", "--out", "-"]).stdout
    for stage in ("preprocess_toyset", "train_toy_exp", "evaluate_toy_exp", "figure_fig_4_99", "table_4_1"):
        assert f"\n  {stage}:\n" in dvc, stage
    assert "toy_chapter/steps.py" in dvc and "experiments.toy-exp.base.model.scale" in dvc

    dry = _run(toy, [_bin("snakemake"), "-n", "--cores", "1", "reports/thesis_tables.pdf", "--config", "profile=ci"])
    assert "rule figure_fig_4_99:" in dry.stdout and "reports/figures/fig_4_99.png" in dry.stdout

    _run(toy, [_bin("snakemake"), "--cores", "1", "reports/tables/table_4_1.csv", "reports/figures/fig_4_99.png",
               "--config", "profile=ci"])
    rows = {(r["dataset"], r["model"]): r for r in csv.DictReader(open(toy / "reports/tables/table_4_1.csv"))}
    ours = rows[("Emilya", "Seq2Seq")]
    assert ours["status"] == "ours"
    assert ours["G2T_mean_min_distance_ours"].count(".") == 1
    assert rows[("Emilya", "ERD")]["status"] == "reported, not re-run"            # the chapter's table format
    assert ours["emotion_classification_accuracy_percent_ours"] == "n/a"
    assert (toy / "reports/figures/fig_4_99.png").read_bytes().startswith(b"\x89PNG")


def test_toy_chapter_blocks_are_schema_validated(toy):
    edit_params(toy, lambda p: p["datasets"]["toyset"]["base"].update(n="many"))
    proc = _run(toy, [sys.executable, "-m", "stages.train", "--experiment", "toy-exp", "--profile", "ci"], check=False)
    assert proc.returncode == 2 and "datasets.toyset.base.n" in proc.stderr and "Traceback" not in proc.stderr


def test_without_registration_its_names_are_unknown(toy):
    proc = _run(toy, [sys.executable, "-m", "stages.train", "--experiment", "toy-exp", "--profile", "ci"],
                check=False, chapters="")
    assert proc.returncode == 2 and "datasets.toyset: unknown dataset 'toyset'; known: bair, " in proc.stderr


def test_a_step_the_chapter_lacks_is_one_error_line(toy):
    proc = _run(toy, [sys.executable, "-m", "stages.sample", "--experiment", "toy-exp", "--profile", "ci"], check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: experiment toy-exp (model family toy, chapter T toy chapter) has no sample step")
