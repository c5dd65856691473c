"""Shared training machinery: schedule, per-step generators, autocast, sampling and validation."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from stages.checkpoints import build_model
from stages.runtime import autocast, step_generator
from stages.video.data import lr_at, sample_futures, to_float_video, to_uint8_video, validate_psnr

TINY_SRVP = {"nhx": 16, "nf": 4, "nh_inf": 16, "nh_res": 16, "ny": 4, "nz": 4, "nt_inf": 2, "nt_cond": 2}
CPU = torch.device("cpu")


def test_lr_schedule_constant_then_linear_to_zero():
    assert lr_at(0, 3e-4, 10, 5) == 3e-4
    assert lr_at(9, 3e-4, 10, 5) == 3e-4
    assert lr_at(10, 3e-4, 10, 5) == pytest.approx(3e-4)
    assert lr_at(12, 3e-4, 10, 5) == pytest.approx(3e-4 * (1 - 2 / 5))
    assert lr_at(15, 3e-4, 10, 5) == 0.0
    assert lr_at(99, 1.0, 10, 0) == 1.0  # no decay phase


def test_step_generator_depends_only_on_seed_and_step():
    a = torch.rand(3, generator=step_generator(1, 7, CPU))
    torch.rand(100)  # global RNG use in between changes nothing
    b = torch.rand(3, generator=step_generator(1, 7, CPU))
    c = torch.rand(3, generator=step_generator(1, 8, CPU))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_autocast_is_a_no_op_on_cpu():
    assert isinstance(autocast(CPU), contextlib.nullcontext)


def test_video_conversions_round_trip():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 1, 8, 8), dtype=np.uint8)
    f = to_float_video(x, CPU)
    assert f.dtype == torch.float32 and float(f.max()) <= 1.0
    np.testing.assert_array_equal(to_uint8_video(f), x)


def test_training_step_under_bf16_autocast():
    """The CUDA path trains under bf16 autocast; the same code path runs here with CPU autocast."""
    torch.manual_seed(0)
    model = build_model("srvp", TINY_SRVP)
    x = torch.rand(2, 4, 1, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.training_losses(x, generator=step_generator(0, 0, CPU))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_sample_futures_shape_range_and_determinism():
    torch.manual_seed(0)
    model = build_model("srvp", TINY_SRVP).eval()
    cond = torch.rand(3, 2, 1, 64, 64)
    a = sample_futures(model, cond, n_pred=4, n_samples=5, seed=11, device=CPU, chunk=2)
    b = sample_futures(model, cond, n_pred=4, n_samples=5, seed=11, device=CPU, chunk=2)
    assert a.shape == (3, 5, 4, 1, 64, 64)
    assert torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert not torch.equal(a[:, 0], a[:, 1])  # samples differ from each other


def test_validation_is_best_of_n_over_predicted_frames_and_restores_train_mode():
    from stages.metrics.frame import psnr_per_frame

    torch.manual_seed(0)
    model = build_model("srvp", TINY_SRVP).train()
    batch = np.random.default_rng(0).integers(0, 256, (2, 6, 1, 64, 64), dtype=np.uint8)
    score = validate_psnr(model, [batch], n_cond=2, n_samples=4, seed=3, device=CPU)
    assert model.training

    model.eval()
    x = to_float_video(batch, CPU)
    pred = sample_futures(model, x[:, :2], 4, 4, seed=3, device=CPU)
    per_sample = psnr_per_frame(pred, x[:, None, 2:].expand_as(pred)).mean(dim=-1)  # [clips, samples]
    assert score == pytest.approx(float(per_sample.max(dim=1).values.mean()))
    assert score > float(per_sample.mean())  # the best sample, not the average one
