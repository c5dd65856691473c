"""DDP: 2 gloo processes under torchrun compute the same training run as one process with grad_accum = 2."""
from __future__ import annotations

import shutil
import sys

import pytest
import torch

from stages.distributed import Context, my_shards
from tests.conftest import edit_params, run, stage


def test_shards_cover_the_batch_once():
    rows = [r for rank in range(2) for _, r in my_shards(8, Context(rank=rank, world=2), grad_accum=2)]
    assert [(r.start, r.stop) for r in rows] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert [g for g, _ in my_shards(8, Context(rank=1, world=2), grad_accum=2)] == [2, 3]
    with pytest.raises(ValueError, match="divisible"):
        my_shards(6, Context(rank=0, world=4), grad_accum=1)


def _weights(project, exp):
    ckpt = torch.load(project / f"results/ci/{exp}/checkpoint.pt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


def test_two_gloo_processes_match_one_process_with_accumulation(project):
    exp = "srvp-kth"

    def two_shards(params):
        train = params["experiments"][exp]["profiles"]["ci"]["train"]
        train.update(batch_size=4, select="last", lr_constant_steps=3, lr_decay_steps=0)

    edit_params(project, two_shards)
    stage("preprocess", "--dataset", "kth", "--profile", "ci", cwd=project)
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "stages.train", "--experiment", exp, "--profile", "ci", "--device", "cpu"], cwd=project)
    ddp = _weights(project, exp)
    shutil.rmtree(project / f"results/ci/{exp}")

    edit_params(project, lambda p: p["experiments"][exp]["profiles"]["ci"]["train"].update(grad_accum=2))
    stage("train", "--experiment", exp, "--profile", "ci", "--device", "cpu", cwd=project)
    single = _weights(project, exp)

    # Parameters agree (up to the order of float additions); BatchNorm running statistics are per rank by design.
    params = [k for k in single if "running_" not in k and "num_batches" not in k]
    assert params
    for k in params:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5, msg=k)
    # ...and training moved them: the comparison is not between two untouched initialisations.
    from stages.checkpoints import build_model
    from stages.registry import experiment_config, load_params

    cfg = experiment_config(load_params(project / "params.yaml"), exp, "ci")
    torch.manual_seed(cfg["train"]["seed"])
    init = build_model("srvp", cfg["model"]).state_dict()
    assert any(not torch.allclose(init[k], single[k], atol=1e-4) for k in params)
