"""Best/worst-of-N selection and the 95% interval of the SRVP protocol."""
import math

import numpy as np
import pytest

from stages.metrics.protocol import mean_ci95, select_best, select_worst


def test_best_uses_time_mean_not_per_frame_best():
    # Sample 0 has the single best frame (40) but the lower time mean (20); sample 1 is steadily 25.
    scores = np.array([[[40.0, 10.0, 10.0], [25.0, 25.0, 25.0]]])
    value, index = select_best(scores, higher_is_better=True)
    assert index.tolist() == [1] and value.tolist() == [25.0]
    value, index = select_worst(scores, higher_is_better=True)
    assert index.tolist() == [0] and value.tolist() == [20.0]


def test_lower_is_better_for_lpips():
    scores = np.array([[[0.3, 0.3], [0.1, 0.2], [0.5, 0.0]], [[0.9, 0.9], [0.8, 0.8], [0.7, 0.95]]])
    value, index = select_best(scores, higher_is_better=False, metric="lpips")
    assert index.tolist() == [1, 1]  # per-frame minima (0.0, 0.7) sit in sample 2
    np.testing.assert_allclose(value, [0.15, 0.8])
    value, index = select_worst(scores, higher_is_better=False, metric="lpips")
    assert index.tolist() == [0, 0]
    np.testing.assert_allclose(value, [0.3, 0.9])


def test_ties_go_to_lowest_index():
    scores = np.array([[[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [0.0, 0.0]]])
    assert select_best(scores, True)[1].tolist() == [0]
    assert select_worst(scores, False)[1].tolist() == [0]
    assert select_best(np.zeros((2, 3, 4)), False)[1].tolist() == [0, 0]


def test_nan_raises_naming_metric_and_inf_is_allowed():
    scores = np.ones((2, 2, 3))
    scores[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match="ssim"):
        select_best(scores, True, metric="ssim")
    scores[1, 0, 2] = np.inf
    value, index = select_best(scores, True, metric="psnr")
    assert index.tolist() == [0, 0] and np.isinf(value[1])


def test_bad_shape_raises():
    with pytest.raises(ValueError):
        select_best(np.ones((2, 3)), True)


def test_mean_ci95_hand_computation():
    values = [1.0, 2.0, 3.0, 4.0]
    mean, half = mean_ci95(values)
    std_pop = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 4)  # ddof=0
    assert mean == pytest.approx(2.5)
    assert half == pytest.approx(1.96 * std_pop / 2.0)
    assert mean_ci95([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError, match="psnr"):
        mean_ci95([1.0, float("nan")], metric="psnr")
    with pytest.raises(ValueError):
        mean_ci95([])
