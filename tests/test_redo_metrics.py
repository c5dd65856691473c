"""Permutation-matched segmentation metrics against hand-computed masks and a loop reference."""
import itertools

import numpy as np
import pytest

from stages.metrics.segmentation import best_permutation_scores, hard_regions, score_masks


def test_binary_hand_example():
    gt = np.array([[[1, 1], [0, 0]]])
    soft0 = np.array([[[0.9, 0.2], [0.1, 0.1]]])
    masks = np.stack([soft0, 1 - soft0], 1)
    s = score_masks(gt, masks)
    # channel 0 as foreground: acc 3/4, IoU 1/2; its complement: acc 1/4, IoU 1/4 -> keep the better
    assert s["Acc"][0] == pytest.approx(0.75)
    assert s["IoU"][0] == pytest.approx(0.5)


def test_binary_is_redo_rule_max_of_mask_and_complement():
    rng = np.random.default_rng(0)
    gt = (rng.random((5, 6, 6)) < 0.3).astype(int)
    soft0 = rng.random((5, 6, 6))
    s = score_masks(gt, np.stack([soft0, 1 - soft0], 1))
    fg = soft0 >= 0.5
    for i in range(5):
        accs, ious = [], []
        for pred in (fg[i], ~fg[i]):
            accs.append((pred == gt[i].astype(bool)).mean())
            inter, union = (pred & (gt[i] == 1)).sum(), (pred | (gt[i] == 1)).sum()
            ious.append(inter / union)
        assert s["Acc"][i] == pytest.approx(max(accs))
        assert s["IoU"][i] == pytest.approx(max(ious))


def test_threshold_is_inclusive_and_empty_images_score_one():
    # The authors binarise with >= 0.5: a pixel at exactly 0.5 is channel 0's.
    soft0 = np.array([[[0.5, 0.4999], [0.7, 0.0]]])
    assert hard_regions(np.stack([soft0, 1 - soft0], 1)).tolist() == [[[0, 1], [0, 1]]]
    # No foreground in the truth, none predicted under the best assignment: IoU 1 (theirs: 0/0), acc 1.
    gt = np.zeros((1, 2, 2), int)
    s = score_masks(gt, np.stack([1 - np.zeros((1, 2, 2)), np.zeros((1, 2, 2))], 1))
    assert s["IoU"][0] == 1.0 and s["Acc"][0] == 1.0


def test_accuracy_and_iou_pick_their_permutations_independently():
    # gt: 1 foreground pixel out of 5; prediction region 0 = 3 pixels incl. the fg one, region 1 = 2 pixels.
    gt = np.array([[[1, 0, 0, 0, 0]]])
    pred = np.array([[[0, 0, 0, 1, 1]]])
    s = best_permutation_scores(gt, pred, 2)
    # fg <- region 0: acc 3/5, IoU 1/3; fg <- region 1: acc 2/5, IoU 0. Both maxima from "fg <- region 0".
    assert s["Acc"][0] == pytest.approx(0.6) and s["IoU"][0] == pytest.approx(1 / 3)
    gt4 = np.array([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]]])
    pred4 = np.array([[[0, 1, 1, 1, 1, 1, 1, 1, 1, 1]]])
    s4 = best_permutation_scores(gt4, pred4, 2)
    # fg <- region 0: acc 7/10, IoU 1/4; fg <- region 1: acc 3/10, IoU 3/10 -> acc from one, IoU from the other
    assert s4["Acc"][0] == pytest.approx(0.7) and s4["IoU"][0] == pytest.approx(0.3)


def _reference(gt, pred, n):
    acc, iou = [], []
    for g, p in zip(gt, pred):
        best_a = best_i = -1.0
        for perm in itertools.permutations(range(n)):
            mapped = np.array(perm)  # class c is predicted by region perm[c]
            hit = sum(((g == c) & (p == mapped[c])).sum() for c in range(n))
            best_a = max(best_a, hit / g.size)
            ious = []
            for c in range(1, n):
                inter = ((g == c) & (p == mapped[c])).sum()
                union = ((g == c) | (p == mapped[c])).sum()
                ious.append(1.0 if union == 0 else inter / union)
            best_i = max(best_i, float(np.mean(ious)))
        acc.append(best_a)
        iou.append(best_i)
    return np.array(acc), np.array(iou)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_matches_loop_reference(n):
    rng = np.random.default_rng(n)
    gt = rng.integers(0, n, (6, 5, 7))
    pred = rng.integers(0, n, (6, 5, 7))
    s = best_permutation_scores(gt, pred, n)
    acc, iou = _reference(gt, pred, n)
    np.testing.assert_allclose(s["Acc"], acc)
    np.testing.assert_allclose(s["IoU"], iou)


def test_three_regions_relabelled_perfectly():
    gt = np.array([[[0, 1, 2], [2, 1, 0]]])
    pred = (gt + 1) % 3                       # same partition, other region names
    s = best_permutation_scores(gt, pred, 3)
    assert s["Acc"][0] == 1.0 and s["IoU"][0] == 1.0
    soft = np.eye(3)[pred].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(hard_regions(soft), pred)


def test_rejects_out_of_range_labels():
    with pytest.raises(ValueError):
        best_permutation_scores(np.array([[[3]]]), np.array([[[0]]]), 2)
