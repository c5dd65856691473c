"""Chapter 4.2 end to end on the ci profile in a scratch project: the reference experiment, a conditional and an
unconditional model, Tables 4.3-4.6 from the per-table metrics files, resumable training, and bad inputs
(exit 2, the file or key named, nothing partial). The identity descriptor is a stub injected here (the real
one is exercised by the graph's ci run and tests/test_gmv_identity*.py)."""
import csv
import json
import types

import numpy as np
import pytest
import torch

from stages import evaluate, preprocess, tables, train
from stages.errors import ConfigError, DataError
from stages.gmv import identity_pairs
from stages.training import STOPPED_EARLY
from tests.conftest import edit_params, stage


def stub_identity():
    class Descriptor:
        label = "stub mean colour"

        def describe(self, images):
            return images.reshape(len(images), -1, 3).mean(1).astype(np.float32)

    def auc(pos, neg):
        pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
        return float(((pos > neg) + 0.5 * (pos == neg)).mean())

    from stages.metrics.identity import auc_ci95   # a pure formula of the AUC and the counts

    return types.SimpleNamespace(load_descriptor=lambda name, weights=None, device="cpu": Descriptor(), auc=auc,
                                 auc_ci95=auc_ci95, pair_distances=lambda a, b: np.linalg.norm(a - b, axis=1))


def test_reference_models_and_tables(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.setattr(identity_pairs, "identity_module", stub_identity)
    ci = ["--profile", "ci"]
    assert preprocess.main(["--dataset", "celeba", *ci]) == 0
    for exp in ("celeba-reference", "cgmv-celeba", "gmv-celeba"):
        assert train.main(["--experiment", exp, *ci]) == 0
        assert evaluate.main(["--experiment", exp, *ci]) == 0
    ref = json.loads((project / "results/ci/celeba-reference/metrics_4_3.json").read_text())
    values = {v["mean"] for v in ref["metrics"].values()}
    assert len(values) == 1 and 0 <= values.pop() <= 100                 # real-vs-real in all three columns
    assert ref["metrics"]["identity_preservation_AUC_percent_generated-vs-real"]["weights"] == "stub mean colour"
    dataset_row = json.loads((project / "results/ci/celeba-reference/metrics_4_5.json").read_text())
    assert dataset_row["metrics"]["label_distance"]["mean"] == 0.0 and len(dataset_row["per_attribute_accuracy"]) == 40
    cgmv = json.loads((project / "results/ci/cgmv-celeba/metrics_4_4.json").read_text())
    assert cgmv["report"] == {"table": "4.4", "dataset": "CelebA (test images as inputs)", "model": "CGMV"}
    assert all(v["status"] == "ok" for v in cgmv["metrics"].values()) and len(cgmv["metrics"]) == 5
    # The attribute estimate of one model's images against the reference's p: hand-check the label distance.
    q = [cgmv_v["mean"] for cgmv_v in json.loads(
        (project / "results/ci/cgmv-celeba/metrics_4_6.json").read_text())["metrics"].values()]
    p = list(np.load(project / "results/ci/celeba-reference/reference.npz")["p"])
    ld = json.loads((project / "results/ci/cgmv-celeba/metrics_4_5.json").read_text())["metrics"]["label_distance"]
    assert abs(ld["mean"] - np.mean(np.abs(np.array(q) - np.array(p)))) < 1e-12

    # Figures draw from the trained checkpoints: PNG bytes, deterministic.
    from stages.gmv import figures
    from stages.registry import load_params
    params = load_params("params.yaml")
    grid = {"experiments": {"main": "gmv-celeba"}, "n_rows": 2, "n_cols": 3, "seed": 0}
    interp = {"experiments": {"main": "gmv-celeba"}, "interpolate": ["content", "view"], "n_rows": 2, "n_steps": 4}
    views = {"experiments": {"main": "cgmv-celeba"}, "n_inputs": 2, "n_views": 3}
    for draw, spec in ((figures.gmv_grid, grid), (figures.gmv_interpolation, interp), (figures.conditional_views, views)):
        png, caption = draw(params, "ci", spec)
        assert png.startswith(b"\x89PNG") and draw(params, "ci", spec)[0] == png and "ci profile" in caption

    out = project / "reports/tables/table_4_3.csv"
    assert tables.main(["--table", "4.3", *ci, "--out", str(out),
                        "--metrics", "results/ci/celeba-reference/metrics_4_3.json",
                        "--expect", "CelebA (test identities)|real data (reference, real pairs)",
                        "--metrics", "results/ci/gmv-celeba/metrics_4_3.json",
                        "--expect", "CelebA (test identities)|GMV"]) in (0, None)
    rows = {r["model"]: r for r in csv.DictReader(out.open())}
    assert rows["GMV"]["status"] == "ours" and rows["GANx2"]["status"] == "not run"
    assert rows["GMV"]["identity_preservation_AUC_percent_generated-vs-generated_thesis"] == "76.3 %"
    assert "computed with stub mean colour" in rows["GMV"]["notes"]


def test_training_resumes_to_the_same_weights(project, monkeypatch):
    monkeypatch.chdir(project)
    ci = ["--profile", "ci"]
    assert preprocess.main(["--dataset", "mnist", *ci]) == 0
    assert preprocess.main(["--dataset", "mvmnist", *ci]) == 0
    edit_params(project, lambda p: p["experiments"]["gmv-mvmnist"]["profiles"]["ci"]["train"].update(steps=4))
    exp = ["--experiment", "gmv-mvmnist", *ci]
    assert train.main(exp) == 0
    ckpt = project / "results/ci/gmv-mvmnist/checkpoint.pt"
    full = torch.load(ckpt, weights_only=True)["state_dict"]
    ckpt.unlink()
    assert train.main([*exp, "--no-resume", "--stop-after-steps", "2"]) == STOPPED_EARLY
    assert not ckpt.exists()
    assert train.main(exp) == 0
    resumed = torch.load(ckpt, weights_only=True)["state_dict"]
    for k in full:
        torch.testing.assert_close(resumed[k], full[k], msg=k)


def test_missing_chairs_archive_exits_2_with_where_to_get_it(project):
    edit_params(project, lambda p: p["datasets"]["chairs"]["profiles"]["ci"].update(source="official"))
    proc = stage("preprocess", "--dataset", "chairs", "--profile", "ci", cwd=project, check=False)
    assert proc.returncode == 2 and "rendered_chairs.tar is missing" in proc.stderr
    assert "di.ens.fr/willow" in proc.stderr and not (project / "data/processed/ci/chairs/views.npz").exists()


def test_corrupt_checkpoint_and_impossible_counts_name_the_fix(project, monkeypatch):
    monkeypatch.chdir(project)
    ci = ["--profile", "ci"]
    assert preprocess.main(["--dataset", "celeba", *ci]) == 0
    ckpt = project / "results/ci/celeba-reference/checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"truncated")
    with pytest.raises(DataError, match="checkpoint.pt is corrupt"):
        evaluate.main(["--experiment", "celeba-reference", *ci])
    assert not list(ckpt.parent.glob("metrics_*.json")) and not (ckpt.parent / "reference.npz").exists()
    edit_params(project, lambda p: p["protocols"]["gmv-celeba"]["profiles"]["ci"].update(n_attribute_images=10 ** 6))
    with pytest.raises(ConfigError, match="protocols.gmv-celeba.n_attribute_images = 1000000"):
        evaluate.main(["--experiment", "celeba-reference", *ci])
    edit_params(project, lambda p: p["protocols"]["gmv-celeba"]["profiles"]["ci"].update(test_identities_from=10 ** 6))
    with pytest.raises(DataError, match="no test identity"):
        evaluate.main(["--experiment", "cgmv-celeba", *ci])
