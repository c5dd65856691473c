"""params.yaml validation and resolution: errors name the bad key and the file."""
from __future__ import annotations

import re

import pytest

from stages import chapters
from stages.errors import ConfigError
from stages.registry import deep_merge, experiment_config, load_params
from tests.conftest import ROOT, edit_params, stage


def test_repository_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    cfg = experiment_config(params, "srvp-smmnist", "paper")
    # Thesis values (catalog 2.1) survive resolution in the paper profile.
    assert cfg["model"]["beta_z"] == 2.0 and cfg["model"]["res_gain"] == 1.41 and cfg["model"]["ny"] == 20
    assert cfg["train"]["batch_size"] == 128 and cfg["train"]["lr"] == 3e-4
    assert cfg["train"]["lr_constant_steps"] == 1_000_000 and cfg["train"]["lr_decay_steps"] == 100_000
    assert cfg["protocol"]["n_samples"] == 100 and (cfg["protocol"]["n_cond"], cfg["protocol"]["n_pred"]) == (5, 20)


def test_profile_override_is_deep_merged():
    params = load_params(ROOT / "params.yaml")
    smoke = experiment_config(params, "srvp-smmnist", "smoke")
    assert smoke["model"]["nf"] == 8          # overridden
    assert smoke["model"]["beta_z"] == 2.0    # inherited from base
    assert deep_merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


def _load_after(project, edit):
    edit_params(project, edit)
    return load_params(project / "params.yaml")


def test_unknown_key_is_named(project):
    def typo(p):
        p["experiments"]["srvp-smmnist"]["base"]["train"]["lrr"] = 0.1

    with pytest.raises(ConfigError, match=r"experiments\.srvp-smmnist\.base\.train.*'lrr'"):
        _load_after(project, typo)


def test_wrong_type_is_named(project):
    def bad(p):
        p["experiments"]["svg-smmnist"]["base"]["train"]["batch_size"] = "large"

    with pytest.raises(ConfigError, match=r"experiments\.svg-smmnist\.base\.train\.batch_size"):
        _load_after(project, bad)


def test_bad_profile_override_is_named(project):
    def bad(p):
        p["experiments"]["srvp-smmnist"]["profiles"]["smoke"]["train"]["batch_size"] = 0

    with pytest.raises(ConfigError, match=r"srvp-smmnist \(profile smoke\)\.train\.batch_size"):
        _load_after(project, bad)


def test_unknown_references_are_named(project):
    def bad(p):
        p["experiments"]["srvp-smmnist"]["dataset"] = "kth-typo"

    with pytest.raises(ConfigError, match="unknown dataset 'kth-typo'"):
        _load_after(project, bad)


def test_malformed_yaml(project):
    (project / "params.yaml").write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params.yaml, line 2, column 1: not valid YAML"):
        load_params(project / "params.yaml")


def test_cli_reports_config_error_without_traceback(project):
    def typo(p):
        p["protocols"]["video-smmnist"]["base"]["n_samplez"] = 3

    edit_params(project, typo)
    proc = stage("train", "--experiment", "srvp-smmnist", "--profile", "ci", cwd=project, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "n_samplez" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project / "results").exists()


def test_cli_unknown_experiment(project):
    proc = stage("train", "--experiment", "nope", "--profile", "ci", cwd=project, check=False)
    assert proc.returncode == 2 and "unknown experiment 'nope'" in proc.stderr


@pytest.mark.parametrize("edit, where", [
    (lambda p: p["datasets"]["smmnist"]["base"].update(max_speed="fast"), "datasets.smmnist.base.max_speed"),
    (lambda p: p["datasets"]["kth"]["base"].update(frame_sise=64), "frame_sise"),
    (lambda p: p["experiments"]["srvp-smmnist"]["base"]["model"].update(nf="4"), "srvp-smmnist.base.model.nf"),
    (lambda p: p["experiments"]["redo-flowers"]["profiles"]["smoke"]["model"].update(nf_mask=-4),
     "redo-flowers (profile smoke).model.nf_mask"),
    (lambda p: p["figures"]["fig-3-11"].update(n_sample=3), "figures.fig-3-11"),
    (lambda p: p["figures"]["fig-3-11"].update(select_metric="FVD"), "figures.fig-3-11.select_metric"),
])
def test_dataset_model_and_figure_blocks_are_validated(project, edit, where):
    with pytest.raises(ConfigError, match=re.escape(where)):
        _load_after(project, edit)


def test_unknown_names_list_the_known_ones(project):
    # The known names are every registered chapter's, sorted: derived, so a new chapter needs no edit here.
    families = ", ".join(sorted(f.name for ch in chapters.chapters() for f in ch.families))
    kinds = ", ".join(sorted(k.name for ch in chapters.chapters() for k in ch.figures))
    with pytest.raises(ConfigError, match=re.escape(f"unknown model family 'srvpp'; known: {families}.")):
        _load_after(project, lambda p: p["experiments"]["srvp-smmnist"].update(model="srvpp"))
    with pytest.raises(ConfigError, match=re.escape(f"unknown figure kind 'video-grid'; known: {kinds}")):
        _load_after(project, lambda p: (p["experiments"]["srvp-smmnist"].update(model="srvp"),
                                        p["figures"]["fig-3-11"].update(kind="video-grid")))
