"""Evaluate a chapter-4.2 CelebA model: ``python -m stages.evaluate --experiment cgmv-celeba --profile smoke``.

Identity preservation (Table 4.3 unconditional, 4.4 conditional; stages/gmv/identity_pairs.py) and
attribute statistics (Tables 4.5, 4.6; stages/metrics/attributes.py) against the reference experiment's
real-image estimates (``reference.npz`` of the protocol's ``reference`` experiment).

Generated images per model (each described once and reused by every column):
- GMV: n_pairs content codes c, each rendered with two view codes (positive pairs); a pair's negative is
  its first image with the next pair's first image (another c);
- GANx-k: n_pairs tuples, views 1 and 2 (positive); view 1 of two tuples (negative);
- conditional (CGMV, CGAN, Mathieu): n_pairs (x_a, x_b) of two test identities: G(E(x_a), v1),
  G(E(x_a), v2) positive, G(E(x_a), v1) with G(E(x_b), v3) negative, (x_a, G(E(x_a), v1)) mixed.
Attributes: n_attribute_images images (conditional: distinct test inputs with random v; GANx: the first
image of each tuple; GMV: G(c, v)), classified with threshold attribute_threshold.
"""
from __future__ import annotations

import zipfile

import numpy as np
import torch

from stages import paths
from stages.errors import DataError
from stages.gmv import identity_pairs as pairs
from stages.gmv.data import TupleSampler, load_splits, to_float
from stages.gmv.files import reference_file
from stages.gmv.metrics_io import attribute_entries, classify, table_columns, write_table_metrics
from stages.gmv.reference import _protocol_summary, _unavailable_kind, check_counts
from stages.gmv.train import load_trained
from stages.metrics.attributes import binarise
from stages.registry import experiment_config
from stages.runtime import select_device


def _batched(fn, n: int, batch: int = 256) -> np.ndarray:
    return np.concatenate([fn(i, min(n, i + batch)) for i in range(0, n, batch)])


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def generated_sets(model, test, n_pairs: int, n_attr: int, seed: int, device) -> dict[str, np.ndarray]:
    """uint8 image sets: ``a``, ``b`` (positive with ``a``), ``c`` (negative with ``a``), ``inputs`` (the
    real x of a conditional model's pairs, as test indices), ``attr`` (the attribute images)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = lambda n, d: torch.randn(n, d, generator=gen).to(device)  # noqa: E731
    if getattr(model, "conditional", False):
        rng = np.random.default_rng([seed, 3])
        ab = TupleSampler(test.content).different(rng, n_pairs, test.content)
        codes = lambda idx: model.encode(to_float(test.images[idx], device))  # noqa: E731
        render = lambda idx: _uint8(model.render(codes(idx), noise(len(idx), model.v_dim)))  # noqa: E731
        out = {"a": _batched(lambda i, j: render(ab[i:j, 0]), n_pairs),
               "b": _batched(lambda i, j: render(ab[i:j, 0]), n_pairs),
               "c": _batched(lambda i, j: render(ab[i:j, 1]), n_pairs), "inputs": ab[:, 0]}
        chosen = np.sort(rng.choice(len(test), n_attr, replace=False))
        out["attr"] = _batched(lambda i, j: render(chosen[i:j]), n_attr)
        return out
    if model.variant == "ganx":
        tuples = lambda n: _uint8(model.tuples(noise(n, model.z_dim)))  # noqa: E731
        views = _batched(lambda i, j: tuples(j - i), n_pairs)
        attr = _batched(lambda i, j: tuples(j - i)[:, 0], n_attr)
        return {"a": views[:, 0], "b": views[:, 1], "c": np.roll(views[:, 0], -1, 0), "attr": attr}
    c = noise(n_pairs, model.c_dim)
    a = _batched(lambda i, j: _uint8(model.render(c[i:j], noise(j - i, model.v_dim))), n_pairs)
    b = _batched(lambda i, j: _uint8(model.render(c[i:j], noise(j - i, model.v_dim))), n_pairs)
    attr = _batched(lambda i, j: _uint8(model.render(noise(j - i, model.c_dim), noise(j - i, model.v_dim))), n_attr)
    return {"a": a, "b": b, "c": np.roll(a, -1, 0), "attr": attr}


def identity_entries(table: str, sets: dict, ref: dict, test, proto: dict, device) -> dict[str, dict]:
    columns = table_columns(table)
    if "unavailable" in ref:
        return pairs.unavailable(columns, str(ref["unavailable"]))
    try:
        identity = pairs.identity_module()
        descriptor = identity.load_descriptor(proto["descriptor"], proto.get("face_weights"), device=str(device))
    except Exception as exc:
        if not _unavailable_kind(exc):
            raise
        return pairs.unavailable(columns, f"identity descriptor unavailable ({exc})")
    a = pairs.describe(descriptor, sets["a"])
    b = pairs.describe(descriptor, sets["b"])
    # GMV / GANx negatives reuse a's descriptors (rolled); conditional negatives are other identities' images.
    c = np.roll(a, -1, 0) if "inputs" not in sets else pairs.describe(descriptor, sets["c"])
    dist = identity.pair_distances
    positives = {"generated": dist(a, b), "real": ref["d_pos"]}
    negatives = {"generated": dist(a, c), "real": ref["d_neg"]}
    if "inputs" in sets:
        positives["mixed"] = dist(ref["descriptors"][sets["inputs"]], a)
    out = pairs.auc_columns(columns, positives, negatives, identity.auc, identity.auc_ci95)
    for entry in out.values():
        entry["weights"] = descriptor.label
    return out


def load_reference_arrays(path: str, ref_exp: str) -> dict:
    """The reference experiment's reference.npz; DataError naming the file and the stage to rerun."""
    try:
        with np.load(path) as data:
            ref = {k: data[k] for k in data.files}
        ref["p"], ref["pos_pairs"]
        return ref
    except FileNotFoundError:
        raise DataError(f"{path} is missing: run the evaluate stage of {ref_exp} first") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is corrupt ({exc}): delete it and rerun the evaluate stage of {ref_exp}") from exc


def evaluate(args, params: dict, profile: str) -> int:
    cfg = experiment_config(params, args.experiment, profile)
    proto, device = cfg["protocol"], select_device(args.device)
    test = load_splits(cfg, profile)["test"]
    check_counts(proto, test)
    ref_exp = proto["reference"]
    ref = load_reference_arrays(reference_file(profile, ref_exp), ref_exp)
    if len(ref["pos_pairs"]) != proto["n_pairs"]:
        raise DataError(f"{reference_file(profile, ref_exp)} holds {len(ref['pos_pairs'])} real pairs, the protocol "
                        f"asks for {proto['n_pairs']}: rerun the evaluate stage of {ref_exp}")
    model = load_trained(paths.checkpoint(profile, args.experiment), device)
    sets = generated_sets(model, test, proto["n_pairs"], proto["n_attribute_images"], proto["seed"], device)
    classifier = load_trained(paths.checkpoint(profile, ref_exp), device)
    predicted = binarise(classify(classifier, sets["attr"], device), proto["attribute_threshold"])
    entries = {t: attribute_entries(t, predicted, ref["p"]) for t in ("4.5", "4.6")}
    identity_table = "4.4" if getattr(model, "conditional", False) else "4.3"
    entries[identity_table] = identity_entries(identity_table, sets, ref, test, proto, device)
    note = ({"note": "our PyTorch port of the original nets, not the authors' Lua implementation that produced "
                     "the thesis's numbers"} if cfg["family"] == "mathieu" and cfg["model"]["arch"] == "original" else {})
    write_table_metrics(params, profile, args.experiment, entries, protocol=_protocol_summary(proto, test), extras=note)
    return 0
