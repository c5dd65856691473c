"""Chapter 4.1 end to end on the ci profile in a scratch copy of the project (in-process CLIs): preprocess,
train, evaluate, Table 4.1, the data / classifier table and the transfer figure; resume; bad inputs."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
import yaml

from stages import evaluate, figures, preprocess, tables, train
from stages.errors import ConfigError, DataError, run_cli
from stages.datasets.emilya import write_synthetic_emilya
from stages.motion import table
from stages.training import STOPPED_EARLY

CI = ["--profile", "ci"]
EXPS = ("motion-classifier", "motion-asfsae", "motion-dasae-d8")


def _motion_only(params: dict) -> None:
    """Keep the chapter's entries only, so that other chapters' work in progress cannot break this test."""
    params["datasets"] = {k: v for k, v in params["datasets"].items() if k in ("emilya", "bandai1")}
    params["protocols"] = {k: v for k, v in params["protocols"].items() if v["kind"] == "motion"}
    params["experiments"] = {k: v for k, v in params["experiments"].items() if v["model"] == "motion"}
    params["figures"] = {k: v for k, v in params["figures"].items() if v["kind"].startswith("motion")}


@pytest.fixture(scope="module")
def ci_project(tmp_path_factory):
    from conftest import copy_project

    project = copy_project(tmp_path_factory.mktemp("motion") / "project")
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    _motion_only(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.chdir(project)
    assert preprocess.main(["--dataset", "emilya", *CI]) == 0
    for exp in EXPS:
        assert train.main(["--experiment", exp, *CI]) == 0
        assert evaluate.main(["--experiment", exp, *CI]) == 0
    yield project
    mp.undo()


def test_table_4_1_data_table_and_figure(ci_project):
    p = ci_project
    m = json.loads((p / "results/ci/motion-dasae-d8/metrics.json").read_text())
    assert m["protocol"]["runs"] == 2 and len(m["metrics"]["estimated_log_likelihood_parzen"]["runs"]) == 2
    assert set(m["metrics"]) == {"estimated_log_likelihood_parzen", "G2T_mean_min_distance", "T2G_mean_min_distance",
                                 "emotion_classification_accuracy_percent"}
    assert 0 <= m["metrics"]["emotion_classification_accuracy_percent"]["mean"] <= 100
    args = ["--table", "4.1", *CI, "--out", "t41.csv"]
    for exp, model in (("motion-asfsae", "ASFSAE"), ("motion-dasae-d8", "DASAE-d8"), ("motion-seq2seq", "Seq2Seq")):
        args += ["--metrics", f"results/ci/{exp}/metrics.json", "--expect", f"Emilya|{model}"]
    assert tables.main(args) == 0
    rows = {r["model"]: r for r in csv.DictReader(open(p / "t41.csv"))}
    assert len(rows) == 9 and rows["ASFSAE"]["status"] == "ours" and rows["Seq2Seq"]["status"] == "not run"
    assert rows["ASFSAE"]["estimated_log_likelihood_parzen_thesis"] == "1805 ± 6.4"
    assert "±" in rows["DASAE-d8"]["estimated_log_likelihood_parzen_ours"]
    assert table.main(["--profile", "ci", "--classifier", "results/ci/motion-classifier/metrics.json",
                       "--out", "extra.csv"]) == 0
    data_rows = list(csv.reader(open(p / "extra.csv")))
    assert data_rows[1][1] == "78,982" and data_rows[4][1] == "82"
    # the Table 4.1-shaped table of ours (Bandai-Namco in the paper profile), here on the ci results
    assert table.main(["--profile", "ci", "--classifier", "results/ci/motion-classifier/metrics.json", "--number", "4.1c",
                       "--title", "t", "--row", "ASFSAE=results/ci/motion-asfsae/metrics.json", "--out", "ours.csv"]) == 0
    ours = list(csv.reader(open(p / "ours.csv")))
    assert ours[0][0] == "model" and ours[1][0] == "ASFSAE" and "±" in ours[1][1]
    assert figures.main(["--figure", "fig-4-2-results", *CI]) == 0
    meta = json.loads((p / "reports/figures/fig_4_2_results.json").read_text())
    assert meta["figure"] == "4.2 (results)"


def test_resume_gives_the_same_weights(ci_project):
    path = ci_project / "results/ci/motion-asfsae/checkpoint.pt"
    full = torch.load(path, weights_only=True)["state_dict"]
    args = ["--experiment", "motion-asfsae", *CI]
    assert train.main([*args, "--no-resume", "--stop-after-steps", "2"]) == STOPPED_EARLY
    assert train.main(args) == 0
    resumed = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_sample_counts_above_a_split_name_the_key(ci_project):
    path = ci_project / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["protocols"]["motion-emilya"]["profiles"]["ci"]["parzen"]["n_test"] = 10_000
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        with pytest.raises(ConfigError, match=r"parzen.n_test = 10000 .* test split"):
            evaluate.main(["--experiment", "motion-asfsae", *CI])
    finally:
        path.write_text(original)


def test_corrupt_checkpoint_exits_2_and_writes_nothing(ci_project, capsys):
    ckpt = ci_project / "results/ci/motion-dasae-d8/checkpoint.pt"
    metrics = ci_project / "results/ci/motion-dasae-d8/metrics.json"
    saved = ckpt.read_bytes()
    ckpt.write_bytes(saved[: len(saved) // 3])
    metrics.unlink()
    try:
        with pytest.raises(SystemExit) as exit_:
            run_cli(evaluate.main, ["--experiment", "motion-dasae-d8", *CI])
        assert exit_.value.code == 2
        assert "checkpoint.pt is corrupt" in capsys.readouterr().err and not metrics.exists()
    finally:
        ckpt.write_bytes(saved)


def test_missing_emilya_folder_exits_2_with_how_to_obtain(ci_project, capsys):
    path = ci_project / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["datasets"]["emilya"]["profiles"]["ci"]["source"] = "import"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        with pytest.raises(SystemExit) as exit_:
            run_cli(preprocess.main, ["--dataset", "emilya", *CI])
        assert exit_.value.code == 2 and "ask its authors" in capsys.readouterr().err
        # a user's copy (here BVH files in the real layout) is then imported as the paper profile does
        ds = params["datasets"]["emilya"]
        cfg = {**ds["base"], **ds["profiles"]["ci"]}
        write_synthetic_emilya(ci_project / "data/raw/emilya", activities=cfg["activities"], emotions=cfg["emotions"],
                               actors=2, frames=120, frame_rate=cfg["frame_rate"], seed=1)
        assert preprocess.main(["--dataset", "emilya", *CI]) == 0
    finally:
        path.write_text(original)
        shutil.rmtree(ci_project / "data/raw/emilya", ignore_errors=True)


def test_processed_file_missing_is_a_data_error(tmp_path):
    from stages.motion.data import MotionData
    with pytest.raises(DataError, match="run its preprocess stage"):
        MotionData("emilya", "nowhere")
