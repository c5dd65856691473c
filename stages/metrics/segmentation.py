"""Segmentation scores with the best region permutation per image (thesis 5.5, ReDO's evaluate).

Predicted regions come from the soft masks: for n = 2, region 0 where mask 0 >= 0.5 (as the authors'
evaluate binarises channel 0); for n >= 3 the argmax. Ground truth holds class indices (0 = background).
For each image, independently for each metric, the assignment of predicted regions to ground-truth
classes that maximises the score is used (per image, not per dataset: catalog A33):
- accuracy: fraction of pixels whose assigned class equals the ground truth;
- IoU: mean over the foreground classes (1..C-1) of the IoU of each class with its assigned region.
For n = 2 this is exactly ReDO's rule: max of the score of channel 0 as foreground and of its complement,
with IoU of the foreground. Assignments are enumerated (n! of them, vectorised), so n <= 6.
Edge rule (IOU_EMPTY_RULE, stated in Table 5.4's notes): a class absent from both the ground truth and its
assigned region scores IoU 1 (a perfect empty match), where the authors' 0/0 gives NaN; the two differ only on
an image without foreground, which none of the Flowers, LFW and CUB test images is.
"""
from __future__ import annotations

import itertools

import numpy as np

MAX_REGIONS = 6
IOU_EMPTY_RULE = "masks binarised at >= 0.5; an image with no foreground in truth and prediction scores IoU 1 (the authors' code: 0/0)"


def hard_regions(masks: np.ndarray) -> np.ndarray:
    """Soft masks [B, n, H, W] -> region index [B, H, W]."""
    if masks.shape[1] == 2:
        return (masks[:, 0] < 0.5).astype(np.int64)   # region 0 where mask 0 >= 0.5
    return masks.argmax(1)


def confusion(gt: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Per-image confusion counts [B, n_gt, n_pred] (classes and regions both in 0..n-1)."""
    b = gt.shape[0]
    flat = (np.arange(b)[:, None] * n * n + gt.reshape(b, -1).astype(np.int64) * n + pred.reshape(b, -1)).ravel()
    return np.bincount(flat, minlength=b * n * n).reshape(b, n, n)


def best_permutation_scores(gt: np.ndarray, pred: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-image accuracy and IoU [B] under each metric's best region assignment."""
    if n > MAX_REGIONS:
        raise ValueError(f"at most {MAX_REGIONS} regions are supported, got {n}")
    if gt.max(initial=0) >= n or pred.max(initial=0) >= n:
        raise ValueError(f"class or region index >= n = {n}")
    conf = confusion(gt, pred, n).astype(np.float64)          # [B, gt class, region]
    perms = np.array(list(itertools.permutations(range(n))))  # perms[p, c] = region assigned to class c
    pixels = conf.sum(axis=(1, 2))
    classes = np.arange(n)
    hits = conf[:, classes[None, :], perms]                   # [B, P, n]: pixels of class c in its region
    acc = hits.sum(-1) / pixels[:, None]
    gt_count = conf.sum(2)                                    # [B, n]
    pred_count = conf.sum(1)                                  # [B, n]
    union = gt_count[:, None, :] + pred_count[:, perms] - hits
    # A class absent from both ground truth and its region is a perfect (empty) match.
    iou_c = np.where(union > 0, hits / np.maximum(union, 1), 1.0)
    iou = iou_c[:, :, 1:].mean(-1)
    return {"Acc": acc.max(1), "IoU": iou.max(1)}


def score_masks(gt: np.ndarray, soft_masks: np.ndarray) -> dict[str, np.ndarray]:
    """Ground truth [B, H, W] and soft masks [B, n, H, W] -> per-image Acc and IoU."""
    n = soft_masks.shape[1]
    return best_permutation_scores(gt, hard_regions(soft_masks), n)
