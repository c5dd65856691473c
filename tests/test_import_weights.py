"""Importing the authors' released SRVP weights (issue 13): every released layout, the CLI, bad inputs, the graph.

The releases are built here from ../shared/official-weights/srvp-*.tsv (every tensor's name, shape and dtype,
as the authors' model class makes them) with random values, saved the way their train.py saves them
(``torch.save(model.state_dict())`` beside ``config.json``). The config.json options come from the authors'
README (anchors 1.4), not from our params.yaml, so the import also checks that params.yaml agrees with them.
"""
from __future__ import annotations

import collections
import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stages.checkpoints import build_model, load_checkpoint, load_foreign
from stages.errors import DataError, run_cli
from stages.graph import build_graph
from stages.import_weights import main
from stages.registry import experiment_config, load_params
from stages.tables import build_table, load_reference
from stages.video.weights import VGG_LAST, authors_key, transposed_to_conv

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "data" / "official-weights"   # copies of ../shared/official-weights/*.tsv (names, shapes)
PARAMS = str(ROOT / "params.yaml")

# The authors' README commands (anchors 1.4): dataset -> (experiment, config.json options).
RELEASES = {
    "smmnist": ("srvp-smmnist", dict(dataset="smmnist", nx=64, nc=1, ny=20, nz=20, archi="dcgan", skipco=False,
                                     nt_inf=5, nt_cond=5, obs_scale=1, beta_z=2, n_euler_steps=1, seq_len=15)),
    "kth": ("srvp-kth", dict(dataset="kth", nx=64, nc=1, ny=50, nz=50, archi="vgg", skipco=True, nt_inf=3,
                             nt_cond=10, obs_scale=0.2, n_euler_steps=2, res_gain=1.2, seq_len=20)),
    "h36m": ("srvp-h36m", dict(dataset="human", nx=64, nc=3, ny=50, nz=50, archi="vgg", skipco=True, nt_inf=3,
                               nt_cond=8, obs_scale=0.2, n_euler_steps=2, res_gain=1.2, seq_len=16)),
    "bair": ("srvp-bair", dict(dataset="bair", nx=64, nc=3, ny=50, nz=50, archi="vgg", skipco=True, nt_inf=2,
                               nt_cond=2, obs_scale=0.71, n_euler_steps=2, seq_len=12)),
}

pytestmark = pytest.mark.skipif(not LAYOUTS.is_dir(), reason="../shared/official-weights/ is not checked out")


def layout(dataset: str) -> tuple[dict, list[tuple[str, tuple[int, ...], str]]]:
    """The authors' constructor arguments and (key, shape, dtype) of every state-dict entry, in order."""
    args, rows = {}, []
    for line in (LAYOUTS / f"srvp-{dataset}.tsv").read_text().splitlines():
        if line.startswith("# constructor arguments:"):
            args = json.loads(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            rows.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x")), dtype))
    return args, rows


def release_tensors(dataset: str, seed: int = 0) -> collections.OrderedDict:
    gen = torch.Generator().manual_seed(seed)
    out = collections.OrderedDict()
    for key, shape, dtype in layout(dataset)[1]:
        if dtype == "int64":
            out[key] = torch.randint(0, 1000, shape, generator=gen)
        elif key.endswith("running_var"):       # a variance: positive, or BatchNorm gives NaN
            out[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            out[key] = torch.randn(shape, generator=gen) * 0.05
    return out


def write_release(folder: Path, dataset: str, tensors=None, options=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(release_tensors(dataset) if tensors is None else tensors, folder / "model.pt")
    (folder / "config.json").write_text(json.dumps(RELEASES[dataset][1] if options is None else options))
    return folder


def cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process as the shell would (run_cli): exit status and stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        run_cli(main, ["--params", PARAMS, "--profile", "paper", *argv])
    return exit_.value.code, err.getvalue()


@pytest.fixture(scope="module")
def smmnist_release(tmp_path_factory) -> Path:
    return write_release(tmp_path_factory.mktemp("release") / "smmnist", "smmnist")


# ---------------------------------------------------------------------------------------------------------------
# Every released configuration loads one-to-one
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", list(RELEASES))
def test_every_release_imports_one_to_one_and_runs(tmp_path, dataset):
    exp, _ = RELEASES[dataset]
    args, rows = layout(dataset)
    cfg = experiment_config(load_params(PARAMS), exp, "paper")
    assert len(rows) == len(build_model("srvp", cfg["model"]).state_dict())   # same entries, none left over
    # The authors' constructor arguments are our paper config, option by option.
    ours = {"nx": "image_size", "nc": "channels", "skipco": "skip", "archi": "arch"}
    for key, value in args.items():
        assert cfg["model"].get(ours.get(key, key), 64 if key == "nx" else None) == value, key

    release = release_tensors(dataset)
    write_release(tmp_path / dataset, dataset, release)
    code, err = cli("--experiment", exp, "--from", str(tmp_path / dataset), "--out", str(tmp_path / "ckpt.pt"))
    assert code == 0, err
    ckpt = load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt["family"] == "srvp" and ckpt["model_config"] == cfg["model"]
    assert ckpt["weights_source"].startswith(f"authors' released SRVP weights, {dataset}/model.pt (sha256 ")
    model = build_model("srvp", ckpt["model_config"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    for key, value in model.state_dict().items():      # every value lands where the mapping table says
        theirs = release[authors_key(key, args["archi"])]
        assert torch.equal(value, transposed_to_conv(theirs) if key == VGG_LAST and args["archi"] == "vgg"
                           else theirs), key
    model.eval()
    x = torch.rand(1, args["nt_inf"] + 1, args["nc"], 64, 64)
    with torch.no_grad():
        pred = model.predict(x, 2, torch.Generator().manual_seed(0))
    assert pred.shape == (1, 2, args["nc"], 64, 64) and torch.isfinite(pred).all()
    if args["archi"] == "vgg":
        _decoder_ends_like_theirs(model, release["decoder.conv.3.1.weight"], args["ny"])


def _decoder_ends_like_theirs(model, their_last: torch.Tensor, ny: int) -> None:
    """The whole imported decoder ends like theirs: sigmoid(conv_transpose2d(h, their weight, padding 1))."""
    dec, seen = model.decoder, {}
    dec.stages[3][0].register_forward_hook(lambda m, i, o: seen.setdefault("h", o))
    gen = torch.Generator().manual_seed(2)
    code = torch.randn(2, 256 + ny, generator=gen)
    skips = [torch.randn(2, c, s, s, generator=gen) for c, s in ((512, 8), (256, 16), (128, 32), (64, 64))]
    with torch.no_grad():
        out = dec(code, skips)
    ref = torch.sigmoid(F.conv_transpose2d(seen["h"], their_last, padding=1))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_vgg_last_layer_is_their_transposed_conv():
    """Ours is Conv2d(64, nc, 3, 1, 1); theirs ConvTranspose2d(64, nc, 3, 1, 1): equal with the converted weight."""
    gen = torch.Generator().manual_seed(3)
    theirs = torch.randn(64, 3, 3, 3, generator=gen)                      # [in, out, k, k]
    h = torch.randn(2, 64, 9, 7, generator=gen)
    expected = F.conv_transpose2d(h, theirs, stride=1, padding=1)
    assert expected.shape == (2, 3, 9, 7)                                 # padding 1 keeps the frame size
    torch.testing.assert_close(F.conv2d(h, transposed_to_conv(theirs), padding=1), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(F.conv2d(h, theirs.transpose(0, 1), padding=1), expected, atol=1e-3)  # flip needed


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs: exit 2, one error line naming the problem, nothing written
# ---------------------------------------------------------------------------------------------------------------
def _variant(src: Path, dest: Path, edit_tensors=None, edit_options=None) -> Path:
    dest.mkdir(parents=True)
    tensors = torch.load(src / "model.pt", weights_only=True)
    options = json.loads((src / "config.json").read_text())
    if edit_tensors:
        edit_tensors(tensors)
    if edit_options:
        edit_options(options)
    return write_release(dest, "smmnist", tensors, options)


def _fails(folder: Path, tmp_path: Path, *needles: str, exp: str = "srvp-smmnist") -> str:
    out = tmp_path / "out" / "checkpoint.pt"
    code, err = cli("--experiment", exp, "--from", str(folder), "--out", str(out))
    assert code == 2 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))  # no temporary either
    return err


def test_missing_key(smmnist_release, tmp_path):
    folder = _variant(smmnist_release, tmp_path / "r", lambda t: t.pop("q_z.bias"))
    _fails(folder, tmp_path, "lacks 1 tensor", "q_z.bias")


def test_extra_key(smmnist_release, tmp_path):
    folder = _variant(smmnist_release, tmp_path / "r", lambda t: t.update({"decoder.conv.3.bias": torch.zeros(1)}))
    _fails(folder, tmp_path, "does not have", "decoder.conv.3.bias")


def test_wrong_shape(smmnist_release, tmp_path):
    folder = _variant(smmnist_release, tmp_path / "r",
                      lambda t: t.update({"w_inf.0.weight": torch.zeros(256, 255)}))
    _fails(folder, tmp_path, "w_inf.0.weight", "(256, 255)", "(256, 256)")


@pytest.mark.parametrize("key, value, ours", [("ny", 30, "model.ny = 20"), ("skipco", True, "model.skip = False"),
                                              ("obs_scale", 0.2, "model.obs_var"), ("dataset", "bair", "'smmnist'")])
def test_options_contradicting_the_experiment(smmnist_release, tmp_path, key, value, ours):
    folder = _variant(smmnist_release, tmp_path / "r", edit_options=lambda o: o.update({key: value}))
    _fails(folder, tmp_path, f"option {key} = {value!r}", ours, "experiments.srvp-smmnist")


def test_the_right_file_for_the_wrong_experiment(smmnist_release, tmp_path):
    _fails(smmnist_release, tmp_path, "option dataset = 'smmnist'", "'kth'", exp="srvp-kth")


class _Touch:
    """An object whose unpickling would create a file: a weights-only load must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickle_payload_is_refused_without_running_it(smmnist_release, tmp_path):
    marker = tmp_path / "ran"
    folder = _variant(smmnist_release, tmp_path / "r", lambda t: t.update({"extra": _Touch(marker)}))
    _fails(folder, tmp_path, "not a plain weights file", "model.pt")
    assert not marker.exists()


def test_truncated_file(smmnist_release, tmp_path):
    folder = _variant(smmnist_release, tmp_path / "r")
    data = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(data[: len(data) // 3])
    _fails(folder, tmp_path, "model.pt", "truncated")


def test_missing_files_and_wrong_container(smmnist_release, tmp_path):
    _fails(tmp_path / "nowhere", tmp_path, "does not exist", "docs/weights.md")
    folder = _variant(smmnist_release, tmp_path / "r")
    (folder / "config.json").unlink()
    _fails(folder, tmp_path, "config.json is missing")
    folder = _variant(smmnist_release, tmp_path / "w")
    torch.save({"model": torch.load(folder / "model.pt", weights_only=True)}, folder / "model.pt")
    _fails(folder, tmp_path, "not the plain state dict")


def test_load_foreign_allows_only_namespaces(tmp_path):
    import argparse

    torch.save({"netEncM": {"w": torch.ones(1)}, "options": argparse.Namespace(nfX=32)}, tmp_path / "best.pth")
    assert load_foreign(tmp_path / "best.pth")["options"].nfX == 32
    with pytest.raises(DataError, match="missing"):
        load_foreign(tmp_path / "none.pth")


def test_cli_help_and_exit_status_from_the_shell(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    help_ = subprocess.run([sys.executable, "-m", "stages.import_weights", "--help"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--from PATH" in help_.stdout and "docs/weights.md" in help_.stdout
    proc = subprocess.run([sys.executable, "-m", "stages.import_weights", "--experiment", "srvp-smmnist",
                           "--profile", "paper", "--from", str(tmp_path / "absent"), "--out", str(tmp_path / "c.pt")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "absent does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "c.pt").exists()
    proc = subprocess.run([sys.executable, "-m", "stages.import_weights", "--experiment", "srvp-smmnist",
                           "--params", str(tmp_path / "none.yaml")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "none.yaml not found" in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# The graph and the report
# ---------------------------------------------------------------------------------------------------------------
def test_an_experiment_with_weights_imports_instead_of_training():
    params = load_params(PARAMS)
    released = {s.name: s for s in build_graph(params, "paper-released")}
    assert "import_srvp_kth" in released and "train_srvp_kth" not in released
    imp = released["import_srvp_kth"]
    assert imp.outs == ["results/paper-released/srvp-kth/checkpoint.pt"]
    assert {"data/raw/pretrained/srvp/kth/model.pt", "data/raw/pretrained/srvp/kth/config.json",
            "stages/import_weights.py", "stages/video/weights.py", "models/srvp.py"} <= set(imp.deps)
    assert imp.outs[0] in released["sample_srvp_kth"].deps and not imp.plots   # sample follows; no train curve
    assert {"evaluate_srvp_kth", "table_3_2", "report"} <= set(released)
    # Only experiments with released weights run there, on the paper datasets (the profile extends paper).
    assert not any(name.startswith(("train_", "import_svg", "import_mvbigan")) for name in released)
    assert "download_mnist" in released and "download_kth" in released
    smoke = {s.name for s in build_graph(params, "smoke")}
    assert "train_srvp_kth" in smoke and not any(name.startswith("import_") for name in smoke)


def test_report_row_names_the_weights(tmp_path):
    ref = load_reference(ROOT / "reference" / "thesis_numbers.yaml", "3.2")
    row = ("KTH", "SRVP (ours)")
    ok = {"status": "ok", "mean": 29.7, "ci95": 0.2, "n": 1000}
    metrics = {"m.json": {"profile": "paper-released", "report": {"table": "3.2", "dataset": row[0], "model": row[1]},
                          "metrics": {c: ok for c in ref.columns},
                          "weights_source": "authors' released SRVP weights, kth/model.pt (sha256 1a2b3c4d5e6f)"}}
    _, rows = build_table(ref, "paper-released", metrics, [row])
    line = next(r for r in rows if tuple(r[1:3]) == row)
    assert "model: authors' released SRVP weights, kth/model.pt (sha256 1a2b3c4d5e6f)" in line[-1]


def test_shared_layout_files_are_the_ones_tested():
    assert sorted(p.name for p in LAYOUTS.glob("srvp-*.tsv") if "config" not in p.name) == \
        sorted(f"srvp-{d}.tsv" for d in RELEASES)


def test_registry_weights_entries_and_profile_inheritance(tmp_path):
    import yaml

    from stages.errors import ConfigError
    from stages.registry import _inherit_profiles, dataset_config, enabled_experiments

    params = load_params(PARAMS)
    assert dataset_config(params, "mnist", "paper-released")["source"] == "official"   # inherited from paper
    assert set(enabled_experiments(params, "paper-released")) >= {"srvp-smmnist", "srvp-kth", "srvp-h36m",
                                                                   "srvp-bair"}
    assert "svg-kth" not in enabled_experiments(params, "paper-released")
    assert "weights" not in experiment_config(params, "srvp-kth", "paper")
    raw = yaml.safe_load(Path(PARAMS).read_text())
    raw["experiments"]["srvp-kth"]["profiles"]["paper-released"]["weights"] = {"form": "data/raw/pretrained/x/"}
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="srvp-kth.profiles.paper-released.weights"):
        load_params(tmp_path / "typo.yaml")
    raw = yaml.safe_load(Path(PARAMS).read_text())
    raw["profiles"]["paper-released"]["extends"] = "papers"
    with pytest.raises(ConfigError, match="profiles.paper-released.extends: 'papers'"):
        _inherit_profiles(raw, Path("params.yaml"))


def test_imported_weights_run_through_sample_evaluate_and_the_table_note(project, monkeypatch):
    """A tiny end-to-end run (ci sizes): a release in the authors' layout, made from our ci-size SRVP, is
    imported by its graph stage's command, then sampled, scored and tabled; the row's note names the file."""
    import yaml

    from stages import evaluate, paths, preprocess, sample
    from stages.tables import main as tables_main

    monkeypatch.chdir(project)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["experiments"]["srvp-smmnist"]["profiles"]["ci"]["weights"] = {"from": "data/raw/pretrained/srvp/smmnist/"}
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params("params.yaml")
    cfg = experiment_config(params, "srvp-smmnist", "ci")
    mc = cfg["model"]
    ours = build_model("srvp", mc).state_dict()
    options = dict(dataset="smmnist", nc=1, nf=mc["nf"], nhx=mc["nhx"], ny=mc["ny"], nz=mc["nz"], archi="dcgan",
                   nt_inf=mc["nt_inf"], nt_cond=mc["nt_cond"], nh_inf=mc["nh_inf"], nh_res=mc["nh_res"], beta_z=2)
    write_release(Path("data/raw/pretrained/srvp/smmnist"), "smmnist",
                  {authors_key(k, "dcgan"): v for k, v in ours.items()}, options)

    graph = {s.name: s for s in build_graph(params, "ci")}
    assert "train_srvp_smmnist" not in graph
    imp = graph["import_srvp_smmnist"]
    for name in ("mnist", "smmnist"):
        assert preprocess.main(["--dataset", name, "--profile", "ci"]) == 0
    with pytest.raises(SystemExit) as done:
        run_cli(main, imp.cmd[3:])                       # the stage's own command line
    assert done.value.code == 0
    common = ["--experiment", "srvp-smmnist", "--profile", "ci", "--device", "cpu"]
    assert sample.main(common) == 0 and evaluate.main(common) == 0
    metrics = json.loads(Path(paths.metrics("ci", "srvp-smmnist")).read_text())
    assert metrics["weights_source"].startswith("authors' released SRVP weights, smmnist/model.pt (sha256 ")
    report = cfg["report"]
    with pytest.raises(SystemExit):
        run_cli(tables_main, ["--table", "3.2", "--profile", "ci", "--out", "t.csv", "--metrics",
                              paths.metrics("ci", "srvp-smmnist"), "--expect", f"{report['dataset']}|{report['model']}"])
    row = next(line for line in Path("t.csv").read_text().splitlines() if "SRVP (ours)" in line and "SM-MNIST" in line)
    assert "model: authors' released SRVP weights, smmnist/model.pt" in row


@pytest.mark.skipif(not (ROOT.parent / "shared" / "official-weights").is_dir(), reason="../shared is not checked out")
def test_layout_copies_equal_the_shared_originals():
    shared = ROOT.parent / "shared" / "official-weights"
    originals = sorted(p.name for p in shared.glob("*.tsv"))
    assert originals == sorted(p.name for p in LAYOUTS.glob("*.tsv"))
    for name in originals:
        assert (LAYOUTS / name).read_bytes() == (shared / name).read_bytes(), name
