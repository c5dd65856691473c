"""MV-BiGAN stages end to end on the tiny ci profile, in a scratch copy of the project (in-process CLIs).

Also: interrupted training resumes to the same weights, and bad inputs stop with a clear error.
"""
from __future__ import annotations

import json

import pytest
import torch

from stages import evaluate, figures, preprocess, report, train
from stages.errors import ConfigError, DataError
from stages.mvbigan import table
from stages.training import STOPPED_EARLY

CI = ["--profile", "ci"]


@pytest.fixture
def ci_project(project, monkeypatch):
    monkeypatch.chdir(project)
    assert preprocess.main(["--dataset", "mnist", *CI]) == 0
    return project


def test_quarters_chapter_end_to_end_and_resume(ci_project):
    p = ci_project
    for exp in ("mvbigan-mnist-4views", "mvbigan-mnist-4views-nokl"):
        assert train.main(["--experiment", exp, *CI]) == 0
        assert evaluate.main(["--experiment", exp, *CI]) == 0
    m = json.loads((p / "results/ci/mvbigan-mnist-4views/metrics.json").read_text())
    per_k = ("diversity", "best_error", "observed_error", "observed_error_chance")
    assert set(m["metrics"]) == ({f"{n}_k{k}" for n in per_k for k in range(1, 5)}
                                 | {"inversion_error", "latent_gap", "latent_spread", "d1_acc", "d2_acc"})
    assert all(v["status"] == "ok" and v["n"] > 0 for v in m["metrics"].values())
    # the training log holds the conditioning diagnostics (the learning curve of the observed-pixel error)
    log = [json.loads(line) for line in (p / "results/ci/mvbigan-mnist-4views/run/train_log.jsonl").open()]
    assert any("observed_error_k1" in r for r in log) and any("d1_acc" in r for r in log)
    assert m["lambda"] == pytest.approx(1e-3)
    csv = p / "reports/tables/extra_mvbigan_diversity.csv"
    assert table.main(["--profile", "ci", "--with-kl", "results/ci/mvbigan-mnist-4views/metrics.json",
                       "--without-kl", "results/ci/mvbigan-mnist-4views-nokl/metrics.json", "--out", str(csv)]) == 0
    for fig in ("fig-3-5", "fig-3-6"):
        assert figures.main(["--figure", fig, *CI]) == 0
    assert report.main(["--profile", "ci", "--out", "r.pdf", "--extra-table", str(csv),
                        "--figure", "reports/figures/fig_3_5.png", "--figure", "reports/figures/fig_3_6.png"]) == 0
    assert (p / "r.pdf").stat().st_size > 1000

    # interrupted after 1 of 3 steps, then resumed: the same weights as the uninterrupted run above
    full = torch.load(p / "results/ci/mvbigan-mnist-4views/checkpoint.pt", weights_only=True)["state_dict"]
    args = ["--experiment", "mvbigan-mnist-4views", *CI]
    assert train.main([*args, "--no-resume", "--stop-after-steps", "1"]) == STOPPED_EARLY
    assert train.main(args) == 0
    resumed = torch.load(p / "results/ci/mvbigan-mnist-4views/checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_incoming_and_celeba_figures(ci_project):
    assert preprocess.main(["--dataset", "celeba", *CI]) == 0
    for exp, fig in (("mvbigan-mnist-incoming-views", "fig-3-7"), ("mvbigan-celeba-attr-face", "fig-3-8")):
        assert train.main(["--experiment", exp, *CI]) == 0
        assert figures.main(["--figure", fig, *CI]) == 0
        meta = json.loads((ci_project / f"reports/figures/{fig.replace('-', '_')}.json").read_text())
        assert meta["figure"] == fig[4:].replace("-", ".")


def test_bad_inputs(ci_project, monkeypatch):
    # a missing processed dataset
    with pytest.raises(DataError, match="celeba/faces.npz is missing"):
        train.main(["--experiment", "mvbigan-celeba-attr-face", *CI])
    # missing CelebA files in the paper profile
    with pytest.raises(DataError, match="CelebA files missing .*put the"):
        preprocess.main(["--dataset", "celeba", "--profile", "paper"])
    # evaluation before training
    with pytest.raises(DataError, match="checkpoint.pt is missing"):
        evaluate.main(["--experiment", "mvbigan-mnist-4views", *CI])
    # an unknown view setting in params.yaml
    from tests.conftest import edit_params

    edit_params(ci_project, lambda prm: prm["experiments"]["mvbigan-mnist-4views"]["base"]["model"]["views"]
                .update(setting="halves"))
    with pytest.raises(ConfigError, match="views.setting.: .halves. is not one of"):
        train.main(["--experiment", "mvbigan-mnist-4views", *CI])
