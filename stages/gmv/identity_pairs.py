"""Identity-preservation pairs of Tables 4.3 / 4.4 (thesis 4.2.5) and their AUCs.

Pair kinds (15,000 positive + 15,000 negative per kind in the thesis):

- real:      positive = two images of one test identity (one image repeated when the identity has one);
             negative = images of two test identities;
- generated: positive = two images sharing c (same input x for a conditional model), two view codes v;
             negative = two images from two c (two test identities for a conditional model);
- mixed:     (x, G(E(x), v)) for a conditional model (positive only).

A column "P-vs-N" is the AUC of the positive distances of kind P against the negative distances of kind N:
the probability that a positive pair is closer than a negative one, ties counted 1/2 (Mann-Whitney), in
percent. The descriptor (stages/metrics/identity.py) and the AUC are engineer C's; this module only pairs.
"""
from __future__ import annotations

import numpy as np

AUC_METRIC = "identity_preservation_AUC_percent"
INTERVAL = "95% interval of the AUC (Hanley & McNeil 1982)"


def identity_module():
    """stages.metrics.identity, imported when needed (it pulls in torch and the descriptor's weights)."""
    from stages.metrics import identity

    return identity


def describe(descriptor, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """uint8 [N, 3, S, S] -> float32 [N, D] (the descriptor takes [N, H, W, 3] RGB)."""
    out = [descriptor.describe(np.ascontiguousarray(images[i:i + batch].transpose(0, 2, 3, 1)))
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def auc_columns(columns: list[str], positives: dict[str, np.ndarray], negatives: dict[str, np.ndarray],
                auc, auc_ci95) -> dict[str, dict]:
    """Metrics entries of the table's AUC columns (``<AUC_METRIC>_<P>-vs-<N>``) from pair distances."""
    out = {}
    for col in columns:
        pos, _, neg = col.removeprefix(AUC_METRIC + "_").partition("-vs-")
        value = float(auc(-positives[pos], -negatives[neg]))   # higher score = positive
        half = auc_ci95(value, len(positives[pos]), len(negatives[neg]))
        out[col] = {"status": "ok", "mean": 100.0 * value, "ci95": 100.0 * half, "n": int(len(positives[pos])),
                    "interval": INTERVAL}
    return out


def unavailable(columns: list[str], reason: str) -> dict[str, dict]:
    return {col: {"status": "unavailable", "reason": reason} for col in columns}
