"""Attribute statistics of generated CelebA images (Tables 4.5 and 4.6), from a 40-head attribute classifier.

With ``predicted`` the 0/1 attributes of a set of images (classifier probability >= threshold, 0.5 [our
reading]):

- frequency q_l: the fraction of images showing attribute l (Table 4.6);
- label distance: mean over the 40 attributes of |q_l - p_l|, p the same estimate on real test images
  (Table 4.5; the thesis's values equal the mean, not the sum, of Table 4.6's differences);
- unique combinations: distinct attribute vectors / number of images, in percent [our reading];
- blurry %: 100 q_Blurry (equals Table 4.6's Blurry row).
"""
from __future__ import annotations

import numpy as np


def binarise(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    return (np.asarray(probabilities) >= threshold).astype(np.uint8)


def frequencies(predicted: np.ndarray) -> np.ndarray:
    return np.asarray(predicted, np.float64).mean(0)


def label_distance(q: np.ndarray, p: np.ndarray) -> float:
    q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
    if q.shape != p.shape:
        raise ValueError(f"frequency vectors differ in length: {q.shape} vs {p.shape}")
    return float(np.abs(q - p).mean())


def unique_combinations_percent(predicted: np.ndarray) -> float:
    predicted = np.asarray(predicted, np.uint8)
    return 100.0 * len(np.unique(predicted, axis=0)) / len(predicted)


def blurry_percent(q: np.ndarray, names: list[str]) -> float:
    return 100.0 * float(np.asarray(q)[list(names).index("Blurry")])


def per_attribute_accuracy(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return (np.asarray(predicted) == np.asarray(truth)).mean(0)
