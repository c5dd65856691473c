"""The diversity / best-of-N error table (beyond the thesis): ``python -m stages.mvbigan.table``.

    python -m stages.mvbigan.table --profile smoke --with-kl results/smoke/mvbigan-mnist-4views/metrics.json \
        --without-kl results/smoke/mvbigan-mnist-4views-nokl/metrics.json --out reports/tables/extra_mvbigan_diversity.csv

Writes a plain CSV (one row per number of views) and a JSON sidecar (number, title, caption) that
``stages.report --extra-table`` renders as a text table. The thesis has no numbers for it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from stages.extra_table import write_extra_table
from stages.errors import DataError, run_cli

NUMBER = "B.1"
TITLE = "MV-BiGAN on MNIST quarters: diversity of samples and best-of-N error against the number of views"


def _load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["metrics"]
        return data
    except FileNotFoundError:
        raise DataError(f"{path} not found: run its evaluate stage first (python -m stages.evaluate)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not an MV-BiGAN metrics.json ({exc}): rerun its evaluate stage") from exc


def _cell(m: dict, key: str) -> str:
    v = m["metrics"].get(key)
    if not v or v.get("status") != "ok":
        raise DataError(f"metrics of {m.get('experiment')} lack {key}: rerun its evaluate stage")
    return f"{v['mean']:.4f} ± {v['ci95']:.4f}"


def build(with_kl: dict, without_kl: dict) -> tuple[list[str], list[list[str]], str]:
    k_max = with_kl["protocol"]["n_views"]
    if without_kl["protocol"]["n_views"] != k_max:
        raise DataError("the two experiments have different numbers of views; they cannot share one table")
    lam = with_kl.get("lambda")
    header = ["views", f"diversity (KL, lambda={lam:g})", "diversity (no KL, lambda=0)",
              f"best-of-N error (KL, lambda={lam:g})", "best-of-N error (no KL, lambda=0)"]
    rows = [[str(k), _cell(with_kl, f"diversity_k{k}"), _cell(without_kl, f"diversity_k{k}"),
             _cell(with_kl, f"best_error_k{k}"), _cell(without_kl, f"best_error_k{k}")]
            for k in range(1, k_max + 1)]
    p = with_kl["protocol"]
    caption = (f"{p['n_examples']} test digits, N = {p['n_samples']} samples each from p_H(z|v) with the first k views "
               f"of a random order (fixed per digit). Diversity: mean over sample pairs of the per-pixel RMS "
               f"distance; best-of-N error: smallest per-pixel RMS distance to the ground truth (pixels in [0, 1]); "
               f"mean ± 95% interval over digits. Experiments {with_kl['experiment']} and {without_kl['experiment']}, "
               f"profile {with_kl['profile']}. Not a thesis table: Figs 3.5 and 3.6 only show this qualitatively.")
    return header, rows, caption


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.mvbigan.table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--with-kl", required=True, help="metrics.json of the experiment trained with the KL term")
    ap.add_argument("--without-kl", required=True, help="metrics.json of the experiment trained with lambda = 0")
    ap.add_argument("--out", required=True, help="CSV to write (its .json sidecar is written beside it)")
    args = ap.parse_args(argv)
    header, rows, caption = build(_load(args.with_kl), _load(args.without_kl))
    out = write_extra_table(args.out, header, rows, {"number": NUMBER, "title": TITLE, "caption": caption})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
