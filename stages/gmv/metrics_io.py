"""Writing chapter 4.2's metrics: one ``metrics_<table>.json`` per entry of an experiment's ``report`` list
(stages.paths.report_files), each in the format stages/tables.py reads; and the attribute entries."""
from __future__ import annotations

import numpy as np

from stages import paths
from stages.errors import ConfigError, write_json_atomic
from stages.metrics.attributes import blurry_percent, frequencies, label_distance, unique_combinations_percent
from stages.registry import experiment_config
from stages.tables import load_reference

FREQUENCY = "attribute_frequency:"


def table_columns(table: str) -> list[str]:
    return load_reference(paths.REFERENCE_NUMBERS, table).columns


def classify(classifier, images: np.ndarray, device, batch: int = 256) -> np.ndarray:
    """Attribute probabilities [N, 40] of uint8 images."""
    import torch

    from stages.gmv.data import to_float

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            out.append(torch.sigmoid(classifier(to_float(images[i:i + batch], device))).cpu().numpy())
    return np.concatenate(out)


def attribute_entries(table: str, predicted: np.ndarray, p: np.ndarray, q: np.ndarray | None = None) -> dict[str, dict]:
    """Table 4.5 (label distance, unique combinations, blurry %) or 4.6 (frequencies) from the 0/1 predictions
    of a set of images; ``q`` (default: their frequencies) overrides the estimate, e.g. the reference's p
    measured on every test image while unique combinations count a set of n_attribute_images."""
    from stages.datasets.celeba import ATTRIBUTES

    q = frequencies(predicted) if q is None else q
    n = int(len(predicted))
    ok = lambda v: {"status": "ok", "mean": float(v), "ci95": None, "n": n}  # noqa: E731
    if table == "4.5":
        return {"label_distance": ok(label_distance(q, p)),
                "unique_attribute_combinations_percent": ok(unique_combinations_percent(predicted)),
                "blurry_percent": ok(blurry_percent(q, list(ATTRIBUTES)))}
    return {f"{FREQUENCY}{name}": ok(v) for name, v in zip(ATTRIBUTES, q)}


def write_table_metrics(params: dict, profile: str, exp: str, entries: dict[str, dict], *, protocol: dict,
                        extras: dict | None = None) -> None:
    """One metrics file per report entry of ``exp``; ``entries`` maps a table id to its metrics."""
    cfg = experiment_config(params, exp, profile)
    for entry, path in paths.report_files(profile, exp, params["experiments"][exp].get("report")):
        if entry["table"] not in entries:
            raise ConfigError(f"experiments.{exp}.report names Table {entry['table']}, which a {cfg['family']} "
                              f"evaluation does not fill (it fills {', '.join(sorted(entries))})")
        write_json_atomic(path, {"experiment": exp, "profile": profile, "model": cfg["family"],
                                 "dataset": cfg["dataset"], "report": entry, "protocol": protocol,
                                 "metrics": entries[entry["table"]], **(extras or {})})
        print(f"wrote {path}")
