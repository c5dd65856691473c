"""Importing the authors' released ReDO weights (issue 13): every released layout, the CLI, bad inputs, the graph.

The releases are built from ../shared/official-weights/redo-*.tsv (every tensor's name and shape, as the
authors' model classes make them) with random values, saved the way their train.py saves them: one dict of the
four state dicts, optimiser states and an ``options`` Namespace (``best.pth``), or one file per network
(``<dataset>_netM_state`` ...). The options are the README's (nfX 32 on Flowers and CUB, 64 on LFW), not ours,
so the import also checks that params.yaml agrees with them.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import pathlib
from pathlib import Path

import pytest
import torch

from models.gan_blocks import skip_init
from models.redo import ReDO
from stages.checkpoints import load_checkpoint
from stages.errors import ConfigError, DataError
from stages.import_weights import main
from stages.redo.graph import experiment_stages
from stages.redo.weights import PREFIXES, authors_key, convert
from stages.registry import experiment_config, load_params

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "data" / "official-weights"   # copies of ../shared/official-weights/*.tsv (names, shapes)
PARAMS = load_params(ROOT / "params.yaml")
EXPERIMENTS = {"flowers": "redo-flowers", "lfw": "redo-lfw", "cub": "redo-cub"}


def read_layout(dataset: str) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """(constructor arguments, {key: shape}) of the authors' tensor list for ``dataset``."""
    args, shapes = {}, {}
    for line in (LAYOUTS / f"redo-{dataset}.tsv").read_text().splitlines():
        if line.startswith("# constructor arguments:"):
            args = json.loads(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            key, shape, _ = line.split("\t")
            shapes[key] = tuple(int(n) for n in shape.split("x"))
    return args, shapes


def options(args: dict, **override) -> argparse.Namespace:
    """The Namespace their train.py saves (the options it shares with the model constructor, plus others)."""
    opts = dict(dataset="flowers", sizex=args["sizex"], nx=args["nIn"], nMasks=args["nMasks"], nResM=args["nResM"],
                nf=64, nfM=args["nfM"], nfX=args["nfX"], nfZ=args["nfZ"], nfD=args["nfD"], nz=args["nz"],
                useSelfAttG=args["selfAttG"], useSelfAttD=args["selfAttD"], temperature=args["temperature"],
                wrecZ=5.0, lrG=1e-4, batchSize=20, outf="out", iteration=30000)
    return argparse.Namespace(**{**opts, **override})


def nets_from(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Random tensors with the listed names and shapes, grouped per network as in their checkpoint."""
    g = torch.Generator().manual_seed(seed)
    nets: dict[str, dict] = {net: collections.OrderedDict() for net in PREFIXES}
    for key, shape in shapes.items():
        net, inner = key.split(".", 1)
        nets[net][inner] = torch.randn(shape, generator=g)
    return nets


def save_best(path: Path, nets: dict, opts: argparse.Namespace) -> Path:
    adam = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.0, 0.9), "eps": 1e-8, "weight_decay": 0,
                                          "amsgrad": False, "params": [0, 1]}]}
    payload = {**nets, "options": opts,
               **{f"optimizer{n[3:]}": adam for n in ("netEncM", "netGenX", "netDX", "netRecZ")}}
    torch.save(payload, path)
    return path


def save_split(folder: Path, dataset: str, nets: dict, opts: argparse.Namespace) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for net, (_, suffix) in PREFIXES.items():
        torch.save({net: nets[net], "options": opts}, folder / f"{dataset}_{suffix}_state")
    return folder


def ours_as_theirs(cfg: dict) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """A small release in their format, from our architecture at ``cfg``'s model block (bad-input tests)."""
    with torch.device("meta"):
        model = ReDO.from_config(cfg["model"])
    shapes = {".".join(authors_key(k)): tuple(v.shape) for k, v in model.state_dict().items()}
    m = cfg["model"]
    args = dict(sizex=m["image_size"], nIn=3, nMasks=m["n_regions"], nResM=m["n_res_mask"], nfM=m["nf_mask"],
                nfX=m["ch"], nfZ=m["nf_zenc"], nfD=m["nf_disc"], nz=m["z_dim"], selfAttG=m["self_attention"],
                selfAttD=m["self_attention"], temperature=m["temperature"])
    return args, shapes


@functools.lru_cache(maxsize=2)
def _released_shapes(model_items: tuple) -> dict[str, tuple[int, ...]]:
    with skip_init():
        model = ReDO.from_config(dict(model_items))
    return {".".join(authors_key(k)): tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("dataset", sorted(EXPERIMENTS))
def test_our_architecture_is_the_released_one(dataset):
    # Every released tensor, name and shape, at the paper-released configuration; and nothing else.
    args, shapes = read_layout(dataset)
    cfg = experiment_config(PARAMS, EXPERIMENTS[dataset], "paper-released")
    assert _released_shapes(tuple(sorted(cfg["model"].items()))) == shapes
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 93_259_508 if dataset != "lfw" else True
    assert cfg["model"]["ch"] == args["nfX"] and cfg["model"]["nf_disc"] == args["nfD"] == 64


def test_best_pth_imports_loads_strictly_and_runs(tmp_path):
    args, shapes = read_layout("flowers")
    nets = nets_from(shapes)
    path = save_best(tmp_path / "best.pth", nets, options(args))
    cfg = experiment_config(PARAMS, "redo-flowers", "paper-released")
    payload = convert(path, cfg)
    assert payload["family"] == "redo" and payload["run"] == 0 and "best.pth (sha256 " in payload["weights_source"]
    state = payload["state_dict"]
    torch.testing.assert_close(state["mask_net.out.mods.9.weight"], nets["netEncM"]["out.mods.9.weight"])
    torch.testing.assert_close(state["generators.1.convA.0.1.weight_orig"], nets["netGenX"]["net.1.convA.0.1.weight_orig"])
    torch.testing.assert_close(state["z_encoder.net.dense.weight"], nets["netRecZ"]["net.dense.weight"])
    with skip_init():   # every tensor is loaded next
        model = ReDO.from_config(payload["model_config"])
    model.load_state_dict(state, strict=True)
    model.eval()
    del nets, payload
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        masks = model.mask_net(x)
        drawn = model.draw_regions(masks, model.sample_z(1))
        assert masks.shape == (1, 2, 128, 128) and drawn.shape == (1, 2, 3, 128, 128)
        assert model.disc(x).shape == (1,) and model.z_encoder(x).shape == (1, 2, 32)
        assert torch.isfinite(masks).all() and torch.isfinite(drawn).all()


@pytest.mark.parametrize("dataset", ["lfw", "cub"])
def test_split_network_files_import(tmp_path, dataset):
    args, shapes = read_layout(dataset)
    nets = nets_from(shapes, seed=1)
    folder = save_split(tmp_path / dataset, dataset, nets, options(args, dataset=dataset))
    payload = convert(folder, experiment_config(PARAMS, EXPERIMENTS[dataset], "paper-released"))
    assert f"{dataset}_netM_state" in payload["weights_source"] and f"{dataset}_netZ_state" in payload["weights_source"]
    torch.testing.assert_close(payload["state_dict"]["disc.dense.weight"], nets["netDX"]["dense.weight"])
    assert len(payload["state_dict"]) == len(shapes)


@pytest.fixture
def small(tmp_path):
    """A ci-sized release in the best.pth format, its config and its tensors."""
    cfg = experiment_config(PARAMS, "redo-flowers", "ci")
    args, shapes = ours_as_theirs(cfg)
    nets = nets_from(shapes)
    return cfg, args, nets, tmp_path


def test_cli_writes_the_checkpoint_the_evaluation_reads(small):
    cfg, args, nets, tmp = small
    src = save_best(tmp / "best.pth", nets, options(args))
    out = tmp / "run0" / "checkpoint.pt"
    assert main(["--experiment", "redo-flowers", "--profile", "ci", "--from", str(src), "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    model = ReDO.from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["state_dict"], strict=True)
    assert model.segment(torch.zeros(2, 3, 16, 16)).shape == (2, 2, 16, 16)


def _convert_err(tmp, nets, opts, cfg):
    return convert(save_best(tmp / "best.pth", nets, opts), cfg)


def test_missing_key_is_named(small):
    cfg, args, nets, tmp = small
    del nets["netGenX"]["net.1.convB.0.bias"]
    with pytest.raises(DataError, match=r"lacks 1 tensor.*netGenX\.net\.1\.convB\.0\.bias"):
        _convert_err(tmp, nets, options(args), cfg)


def test_extra_key_is_named(small):
    cfg, args, nets, tmp = small
    nets["netDX"]["blocs.9.1.bias"] = torch.zeros(3)
    with pytest.raises(DataError, match=r"does not have, first netDX\.blocs\.9\.1\.bias"):
        _convert_err(tmp, nets, options(args), cfg)


def test_wrong_shape_names_key_and_both_shapes(small):
    cfg, args, nets, tmp = small
    nets["netRecZ"]["net.dense.weight"] = torch.zeros(5, 8)
    with pytest.raises(DataError, match=r"netRecZ\.net\.dense\.weight has shape \(5, 8\).*needs \(8, 4\)"):
        _convert_err(tmp, nets, options(args), cfg)


@pytest.mark.parametrize("option,value,ours", [("nfX", 4, "ch"), ("useSelfAttD", True, "self_attention"),
                                                ("temperature", 0.5, "temperature")])
def test_contradicting_options_name_both_values(small, option, value, ours):
    cfg, args, nets, tmp = small
    with pytest.raises(ConfigError, match=rf"option {option} = {value!r} but the experiment's model\.{ours} = "):
        _convert_err(tmp, nets, options(args, **{option: value}), cfg)


def test_pickle_payload_is_refused_without_running_it(small):
    cfg, args, nets, tmp = small
    path = tmp / "best.pth"
    torch.save({**nets, "options": options(args), "extra": pathlib.PurePosixPath("x")}, path)
    with pytest.raises(DataError, match="not a plain weights file"):
        convert(path, cfg)


def test_truncated_file_is_refused(small):
    cfg, args, nets, tmp = small
    path = save_best(tmp / "best.pth", nets, options(args))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        convert(tmp, cfg)   # the folder: best.pth found inside


def test_split_folder_missing_a_network_and_wrong_container(small):
    cfg, args, nets, tmp = small
    folder = save_split(tmp / "split", "flowers", nets, options(args))
    (folder / "flowers_netD_state").unlink()
    with pytest.raises(DataError, match="lacks the split file"):
        convert(folder, cfg)
    torch.save(nets["netEncM"], tmp / "plain.pth")     # a bare state dict: no options
    with pytest.raises(DataError, match="has no 'options'"):
        convert(tmp / "plain.pth", cfg)
    with pytest.raises(DataError, match="neither best.pth"):
        convert(_empty(tmp), cfg)


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def test_paper_released_graph_imports_instead_of_training():
    stages = experiment_stages(PARAMS, "paper-released", "redo-flowers")
    names = [s.name for s in stages]
    assert names[0].startswith("import_redo") and not any(n.startswith("train_") for n in names)
    ckpt = "results/paper-released/redo-flowers/run0/checkpoint.pt"
    assert stages[0].outs == [ckpt] and ckpt in stages[-1].deps
    assert "data/raw/pretrained/redo/flowers/" in stages[0].cmd
    assert sum(s.name.startswith("train_") for s in experiment_stages(PARAMS, "ci", "redo-flowers")) == 2


def test_paper_released_profile_imports_every_released_dataset():
    from stages.graph import build_graph

    names = {s.name for s in build_graph(PARAMS, "paper-released")}
    for exp in EXPERIMENTS.values():
        assert f"import_{exp.replace('-', '_')}" in names and f"evaluate_{exp.replace('-', '_')}" in names
    assert "table_5_4" in names and not any(n.startswith("train_redo") for n in names)
