"""Per-attribute accuracy of the CelebA attribute classifier on the test identities (beyond the thesis).

    python -m stages.gmv.accuracy_table --metrics results/smoke/celeba-reference/metrics_4_5.json \
        --out reports/tables/extra_gmv_attribute_accuracy.csv

Reads the reference experiment's metrics file (``per_attribute_accuracy``) and writes a CSV with a JSON
sidecar (number, title, caption) that ``stages.report --extra-table`` renders.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from stages.extra_table import write_extra_table
from stages.errors import DataError, run_cli

NUMBER = "B.4.2"
TITLE = "CelebA attribute classifier of Tables 4.5 and 4.6: accuracy per attribute on the test identities"


def build(data: dict) -> tuple[list[str], list[list[str]], str]:
    acc = data["per_attribute_accuracy"]
    rows = [[name, f"{100 * value:.1f}"] for name, value in acc.items()]
    mean = 100 * sum(acc.values()) / len(acc)
    p = data.get("protocol", {})
    caption = (f"Classifier trained on the train identities' images and labels, thresholded at 0.5; accuracy on "
               f"{p.get('n_test_images', '?')} images of {p.get('n_test_identities', '?')} test identities "
               f"(mean {mean:.1f} %). Experiment {data['experiment']}, profile {data['profile']}.")
    return ["attribute", "accuracy (%)"], rows, caption


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.gmv.accuracy_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", required=True, help="a metrics file of the reference experiment")
    ap.add_argument("--out", required=True, help="CSV to write (its .json sidecar is written beside it)")
    args = ap.parse_args(argv)
    try:
        data = json.loads(Path(args.metrics).read_text())
        header, rows, caption = build(data)
    except FileNotFoundError:
        raise DataError(f"{args.metrics} not found: run the reference experiment's evaluate stage") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ZeroDivisionError) as exc:
        raise DataError(f"{args.metrics} is not a reference metrics file ({exc}): rerun its evaluate stage") from exc
    out = write_extra_table(args.out, header, rows, {"number": NUMBER, "title": TITLE, "caption": caption})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
