"""Chapter 5 stages end to end on the ci profile, in a scratch copy of the project.

Stage mains are called in-process (cwd = the scratch project) to keep the test fast; the bad-input case
runs the real CLI to check the exit status and message.
"""
import argparse
import csv
import json

import torch

from stages import evaluate, import_weights, preprocess, tables
from stages.redo import train as redo_train
from stages.redo.weights import authors_key
from stages.training import STOPPED_EARLY
from tests.conftest import edit_params, stage


def test_flowers_train_restart_evaluate_table_and_resume(project, monkeypatch):
    monkeypatch.chdir(project)
    ci = ["--profile", "ci"]
    assert preprocess.main(["--dataset", "flowers", *ci]) == 0
    exp = ["--experiment", "redo-flowers", *ci]
    assert redo_train.main([*exp, "--run", "0"]) == 0
    # Interrupted run 0 resumes to the same weights as the uninterrupted one.
    ckpt = project / "results/ci/redo-flowers/run0/checkpoint.pt"
    full = torch.load(ckpt, weights_only=True)["state_dict"]
    ckpt.unlink()
    assert redo_train.main([*exp, "--run", "0", "--no-resume", "--stop-after-steps", "2"]) == STOPPED_EARLY
    assert not ckpt.exists()
    assert redo_train.main([*exp, "--run", "0"]) == 0
    resumed = torch.load(ckpt, weights_only=True)["state_dict"]
    for k in full:
        torch.testing.assert_close(resumed[k], full[k], msg=k)

    # Every mask is "collapsed" below 0.5: run 1 restarts once (ci allows one restart) and logs it.
    edit_params(project, lambda p: p["experiments"]["redo-flowers"]["profiles"]["ci"]["train"].update(
        collapse_threshold=0.5))
    assert redo_train.main([*exp, "--run", "1"]) == 0
    log = (project / "results/ci/redo-flowers/run1/train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in log if "event" in json.loads(line)] == ["restart"]
    assert evaluate.main(exp) == 0
    metrics = json.loads((project / "results/ci/redo-flowers/metrics.json").read_text())
    assert metrics["metrics"]["IoU_test"]["n"] == 2 and 0 <= metrics["metrics"]["IoU_test"]["mean"] <= 1
    at_init = metrics["metrics"]["IoU_test_at_init"]        # F before training, one score per run
    assert at_init["n"] == 2 and len(metrics["per_run"]["IoU_test_at_init"]) == 2 and 0 <= at_init["mean"] <= 1
    out = project / "reports/tables/table_5_4.csv"
    assert tables.main(["--table", "5.4", *ci, "--out", str(out), "--metrics", "results/ci/redo-flowers/metrics.json",
                        "--expect", "Flowers|ReDO"]) in (0, None)
    rows = {r["dataset"]: r for r in csv.DictReader(out.open())}
    assert rows["Flowers"]["status"] == "ours" and "std over 2 runs" in rows["Flowers"]["notes"]
    assert rows["Flowers"]["IoU_test_thesis"].startswith("0.764")
    assert ">= 0.5" in rows["Flowers"]["notes"]                      # the evaluation's edge rules

    # Run 0's trained weights, saved in the authors' best.pth format and imported back, score the same.
    nets = {}
    for key, tensor in torch.load(ckpt, weights_only=True)["state_dict"].items():
        net, inner = authors_key(key)
        nets.setdefault(net, {})[inner] = tensor
    before = json.loads((project / "results/ci/redo-flowers/metrics.json").read_text())
    opts = argparse.Namespace(sizex=16, nMasks=2, nfX=2, nfD=2, nfZ=2, nfM=4, nz=4, useSelfAttG=False)  # ci block
    torch.save({**nets, "options": opts}, project / "best.pth")
    assert import_weights.main([*exp, "--from", "best.pth"]) == 0
    assert evaluate.main(exp) == 0
    again = json.loads((project / "results/ci/redo-flowers/metrics.json").read_text())
    assert again["per_run"] == before["per_run"] and "best.pth (sha256 " in again["weights_source"]
    assert tables.main(["--table", "5.4", *ci, "--out", str(out), "--metrics", "results/ci/redo-flowers/metrics.json",
                        "--expect", "Flowers|ReDO"]) in (0, None)
    notes = {r["dataset"]: r for r in csv.DictReader(out.open())}["Flowers"]["notes"]
    assert "authors' released ReDO weights" in notes


def test_missing_archives_fail_cleanly(project):
    edit_params(project, lambda p: p["datasets"]["lfw"]["profiles"]["ci"].update(source="official"))
    proc = stage("preprocess", "--dataset", "lfw", "--profile", "ci", cwd=project, check=False)
    assert proc.returncode == 2
    assert "lfw-funneled.tgz is missing" in proc.stderr
    assert not (project / "data/processed/ci/lfw/segmentation.npz").exists()
