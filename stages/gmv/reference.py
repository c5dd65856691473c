"""The reference experiment of Tables 4.3, 4.5 and 4.6 (``celeba-reference``, no generator).

train: the attribute classifier (models.gmv.AttributeClassifier, 40 sigmoid heads, binary cross-entropy)
on the train identities' images and labels. evaluate: on the test identities,

- the classifier's attribute estimate of real images: Table 4.5's "Dataset" row (label distance 0 by
  definition, unique combinations, blurry %) and Table 4.6's "Dataset" row (frequencies p);
- real pairs' identity AUC (Table 4.3's reference row: the same real-vs-real value in its three columns);
- per-attribute accuracy of the classifier on the test identities (an extra table, beyond the thesis);
- ``reference.npz``: p, the real pairs' distances and the test-image descriptors, which every model's
  evaluation reuses (each real image is described once).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stages import paths
from stages.errors import ConfigError, atomic_path
from stages.gmv import identity_pairs as pairs
from stages.gmv.data import TupleSampler, load_splits, to_float
from stages.gmv.files import reference_file
from stages.gmv.metrics_io import attribute_entries, classify, table_columns, write_table_metrics
from stages.gmv.train import load_trained, run
from stages.metrics.attributes import binarise, frequencies, per_attribute_accuracy
from stages.registry import experiment_config
from stages.runtime import select_device


class ClassifierJob:
    def __init__(self, cfg: dict, profile: str, device):
        self.cfg, self.tr, self.device = cfg, cfg["train"], device
        self.train = load_splits(cfg, profile)["train"]
        self.reset(0)

    def reset(self, restarts: int) -> None:
        torch.manual_seed(self.tr["seed"])
        from stages.checkpoints import build_model

        self.model = build_model(self.cfg["family"], self.cfg["model"]).to(self.device).train()
        self.optim = torch.optim.Adam(self.model.parameters(), lr=self.tr["lr"], betas=tuple(self.tr["betas"]))

    def step(self, step: int) -> dict:
        rng = np.random.default_rng([self.tr["seed"], step])
        idx = rng.integers(len(self.train), size=self.tr["batch_size"])
        x = to_float(self.train.images[idx], self.device)
        y = torch.from_numpy(self.train.attrs[idx].astype(np.float32)).to(self.device)
        loss = F.binary_cross_entropy_with_logits(self.model(x), y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return {"loss": float(loss.detach())}

    def validate(self, step: int) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optim": self.optim.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state["optim"])

    def weights(self) -> dict:
        return self.model.state_dict()

    def checkpoint(self, weights: dict, summary: dict) -> dict:
        return {"family": self.cfg["family"], "model_config": self.cfg["model"], "state_dict": weights,
                "experiment": self.cfg["name"], "profile": self.cfg["profile"], **summary}


def train(args, params: dict, profile: str) -> int:
    return run(args, params, profile, ClassifierJob)


def real_pairs(test, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs [n, 2] of positive and negative real test pairs."""
    rng = np.random.default_rng([seed, 1])
    sampler = TupleSampler(test.content)
    return sampler.draw(rng, n_pairs, 2), sampler.different(rng, n_pairs, test.content)


def check_counts(proto: dict, test) -> None:
    if proto["n_attribute_images"] > len(test):
        raise ConfigError(f"protocols.{proto['name']}.n_attribute_images = {proto['n_attribute_images']} but the test "
                          f"identities have {len(test)} images: lower it (thesis: 3,800)")
    if len(np.unique(test.content)) < 2:
        raise ConfigError(f"protocols.{proto['name']}.test_identities_from leaves fewer than two test identities: "
                          "negative pairs need two")


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto, device = cfg["protocol"], select_device(args.device)
    test = load_splits(cfg, profile)["test"]
    check_counts(proto, test)
    classifier = load_trained(paths.checkpoint(profile, args.experiment), device)
    probs = classify(classifier, test.images, device)
    predicted = binarise(probs, proto["attribute_threshold"])
    p = frequencies(predicted)
    rng = np.random.default_rng([proto["seed"], 2])
    subset = np.sort(rng.choice(len(test), proto["n_attribute_images"], replace=False))
    accuracy = per_attribute_accuracy(predicted, test.attrs)

    pos, neg = real_pairs(test, proto["n_pairs"], proto["seed"])
    saved = {"p": p, "accuracy": accuracy, "pos_pairs": pos, "neg_pairs": neg}
    try:
        identity = pairs.identity_module()
        descriptor = identity.load_descriptor(proto["descriptor"], proto.get("face_weights"), device=str(device))
        desc = pairs.describe(descriptor, test.images)
        d_pos = identity.pair_distances(desc[pos[:, 0]], desc[pos[:, 1]])
        d_neg = identity.pair_distances(desc[neg[:, 0]], desc[neg[:, 1]])
        saved.update(descriptors=desc, d_pos=d_pos, d_neg=d_neg, descriptor_label=np.array(descriptor.label))
        value = 100.0 * float(identity.auc(-d_pos, -d_neg))
        auc = {col: {"status": "ok", "mean": value, "ci95": None, "n": int(proto["n_pairs"]),
                     "weights": descriptor.label} for col in table_columns("4.3")}
    except Exception as exc:  # the descriptor's weights or module are absent: say so, never estimate
        if not _unavailable_kind(exc):
            raise
        reason = f"identity descriptor unavailable ({exc})"
        saved["unavailable"] = np.array(reason)
        auc = pairs.unavailable(table_columns("4.3"), reason)
    with atomic_path(reference_file(profile, args.experiment)) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **saved)
    # The dataset rows: p from every test image (label distance 0 by definition), combinations over a set of
    # n_attribute_images like the models'.
    entries = {"4.3": auc, **{t: attribute_entries(t, predicted[subset], p, q=p) for t in ("4.5", "4.6")}}
    names = list(classifier_names())
    extras = {"per_attribute_accuracy": dict(zip(names, map(float, accuracy)))}
    write_table_metrics(params, profile, args.experiment, entries, protocol=_protocol_summary(proto, test),
                        extras=extras)
    return 0


def _unavailable_kind(exc: Exception) -> bool:
    from stages.metrics.weights import WeightsUnavailable

    return isinstance(exc, (WeightsUnavailable, ImportError))


def classifier_names() -> list[str]:
    from stages.datasets.celeba import ATTRIBUTES

    return list(ATTRIBUTES)


def _protocol_summary(proto: dict, test) -> dict:
    return {"n_pairs": proto["n_pairs"], "n_attribute_images": proto["n_attribute_images"],
            "n_test_images": int(len(test)), "n_test_identities": int(len(np.unique(test.content))),
            "descriptor": proto["descriptor"]}
