"""Table 4.2, dataset statistics of chapter 4.2, from our splits beside the thesis's.

    python -m stages.gmv.statistics --profile smoke --chairs data/processed/smoke/chairs/views.npz \
        --celeba data/processed/smoke/celeba/faces.npz --test-identities-from 25 --out reports/tables/table_4_2.csv

Per dataset: train / test images, train / test objects (chairs, identities, items, categories) and views per
object (min, mean, max over all objects). The thesis's numbers come from the reference numbers'
``dataset_statistics.table_4_2``; a dataset this profile does not build shows only the thesis's. Written as a
CSV with a JSON sidecar (``thesis_table``: a thesis table, rendered without the "beyond the thesis" label).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from stages import paths
from stages.extra_table import write_extra_table
from stages.errors import DataError, run_cli
from stages.registry import safe_load

STATS = ("train_samples", "test_samples", "train_objects", "test_objects", "views_per_object_min",
         "views_per_object_mean", "views_per_object_max")
NAMES = {"chairs": "3D-Chairs", "celeba": "CelebA", "mvc": "MVC-Cloth", "flowers102": "102-Flowers"}


def statistics(train_content: np.ndarray, test_content: np.ndarray) -> dict[str, float]:
    counts = np.unique(np.concatenate([train_content, test_content]), return_counts=True)[1]
    return {"train_samples": len(train_content), "test_samples": len(test_content),
            "train_objects": len(np.unique(train_content)), "test_objects": len(np.unique(test_content)),
            "views_per_object_min": int(counts.min()), "views_per_object_mean": float(counts.mean()),
            "views_per_object_max": int(counts.max())}


def _content(path: str, test_from: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as data:
            if "train_identity" in data.files:          # CelebA faces.npz: re-split by identity number
                ident = np.concatenate([data[f"{s}_identity"] for s in ("train", "val", "test")])
                return ident[ident < test_from], ident[ident >= test_from]
            return data["train_content"], data["test_content"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is missing or not a processed chapter-4.2 dataset ({exc}): rerun its preprocess "
                        "stage") from exc


def _thesis_rows(reference: str) -> dict[str, dict]:
    try:
        ref = safe_load(Path(reference).read_text())
        return {r["dataset"]: r for r in ref["dataset_statistics"]["table_4_2"]["rows"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise DataError(f"{reference} lacks dataset_statistics.table_4_2 ({exc}): restore it from version control")


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value):,}"


def build(ours: dict[str, dict], thesis: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    header = ["dataset"] + [f"{s.replace('_', ' ')} ({who})" for s in STATS for who in ("thesis", "ours")]
    rows = []
    for name in NAMES.values():
        row = [name]
        for s in STATS:
            mine = ours.get(name)
            row += [_cell(thesis.get(name, {}).get(s)), _cell(mine[s]) if mine else "not run"]
        rows.append(row)
    return header, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.gmv.statistics", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    for key in NAMES:
        ap.add_argument(f"--{key}", help=f"processed file of {NAMES[key]} (omit when the profile does not build it)")
    ap.add_argument("--test-identities-from", type=int, default=10000, help="CelebA: first test identity")
    ap.add_argument("--reference", default=paths.REFERENCE_NUMBERS)
    ap.add_argument("--out", required=True, help="CSV to write (its .json sidecar is written beside it)")
    args = ap.parse_args(argv)
    ours = {NAMES[k]: statistics(*_content(getattr(args, k), args.test_identities_from))
            for k in NAMES if getattr(args, k)}
    header, rows = build(ours, _thesis_rows(args.reference))
    caption = (f"Train and test splits as this project builds them (profile {args.profile}) beside the thesis's; "
               "objects: chairs, identities, clothing items, flower categories; views per object over all objects. "
               "smoke/ci data are synthetic look-alikes, so only the paper profile is comparable.")
    out = write_extra_table(args.out, header, rows, {"number": "4.2", "title": "Datasets statistics for GMV / CGMV",
                                                     "caption": caption, "thesis_table": True})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
