"""Chapter 4.1 tables beyond the thesis's own: ``python -m stages.motion.table``.

    python -m stages.motion.table --profile smoke --classifier results/smoke/motion-classifier/metrics.json \
        --out reports/tables/extra_motion_data.csv
    python -m stages.motion.table --profile paper --classifier results/paper/motion-bandai1-classifier/metrics.json \
        --row Seq2Seq=results/paper/motion-bandai1-seq2seq/metrics.json ... --number 4.1c --title "..." --out X.csv

Without ``--row``: windows per split and the emotion classifier's accuracy on the real test windows, ours
beside the numbers the thesis gives in prose (§4.1.2: 78,982 / 21,614 / 38,637 windows; Table 4.1's caption:
82%). With ``--row MODEL=metrics.json`` (repeated): a Table 4.1-shaped table of our numbers on another
dataset (Bandai-Namco), with the classifier's real-test accuracy in the caption. Writes a CSV and a JSON
sidecar (number, title, caption) that ``stages.report --extra-table`` renders.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from stages import paths
from stages.extra_table import write_extra_table
from stages.errors import ConfigError, DataError, run_cli
from stages.registry import safe_load

NUMBER = "4.1b"
TITLE = "Emilya: windows per split and the emotion classifier's accuracy on real test windows"
CLASSIFIER_ID = "prose:4.1|Emilya (real test set)|emotion classifier (sequence classifier, architecture similar to the encoders)|emotion_classification_accuracy_percent"


def _load_json(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["metrics"]["emotion_classification_accuracy_percent"]["mean"]
        data["protocol"]["windows"]
        return data
    except FileNotFoundError:
        raise DataError(f"{path} not found: run the emotion classifier's evaluate stage first.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not the emotion classifier's metrics.json ({exc}): rerun its evaluate stage.") from exc


def thesis_facts(reference: str) -> tuple[dict, float]:
    try:
        ref = safe_load(Path(reference).read_text())
        stats = ref["dataset_statistics"]["emilya_section_4_1_2"]
        acc = next(e["value"] for e in ref["numbers"] if e["id"] == CLASSIFIER_ID)
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration) as exc:
        raise DataError(f"{reference} lacks the Emilya facts ({exc}): restore it from version control.") from exc
    return {"train": stats["train_sequences"], "val": stats["validation_sequences"],
            "test": stats["test_sequences"]}, float(acc)


def build(classifier: dict, reference: str) -> tuple[list[str], list[list[str]], str]:
    windows, acc = thesis_facts(reference)
    ours = classifier["protocol"]["windows"]
    header = ["quantity", "thesis", "ours"]
    rows = [[f"{name} windows", f"{windows[s]:,}", f"{ours[s]:,}"]
            for s, name in (("train", "train"), ("val", "validation"), ("test", "test"))]
    mine = classifier["metrics"]["emotion_classification_accuracy_percent"]["mean"]
    rows.append(["emotion classifier, real test accuracy (%)", f"{acc:g}", f"{mine:.1f}"])
    caption = (f"Dataset {classifier['dataset']}, profile {classifier['profile']}: windows of "
               f"{classifier['protocol']['window']} frames at {classifier['protocol']['frame_rate']:g} Hz, each "
               f"recording cut into 60/20/20 contiguous blocks (our reading; the thesis's counts are not 60/20/20, "
               f"catalog A20). Classifier: experiment {classifier['experiment']} (encoder + linear head, selected on "
               f"validation). Chance level is 100 / number of emotions.")
    return header, rows, caption


COLUMNS = [("estimated_log_likelihood_parzen", "Parzen log-likelihood", 0), ("G2T_mean_min_distance", "G2T", 4),
           ("T2G_mean_min_distance", "T2G", 4), ("emotion_classification_accuracy_percent", "transfer accuracy (%)", 1)]


def _model_metrics(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["metrics"]["estimated_log_likelihood_parzen"]
        return data
    except FileNotFoundError:
        raise DataError(f"{path} not found: run that model's evaluate stage first.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a chapter 4.1 model's metrics.json ({exc}): rerun its evaluate stage.") from exc


def build_results(rows: list[tuple[str, dict]], classifier: dict) -> tuple[list[str], list[list[str]], str]:
    header = ["model"] + [name for _, name, _ in COLUMNS]
    out = []
    for label, data in rows:
        cells = [label]
        for key, _, dec in COLUMNS:
            m = data["metrics"].get(key, {})
            if m.get("status") != "ok":
                cells.append("—")
            else:
                cells.append(f"{m['mean']:.{dec}f}" + (f" ± {m['ci95']:.{dec}f}" if m.get("ci95") is not None else ""))
        out.append(cells)
    first = rows[0][1]
    acc = classifier["metrics"]["emotion_classification_accuracy_percent"]["mean"]
    w = classifier["protocol"]["windows"]
    caption = (f"Dataset {first['dataset']}, profile {first['profile']}: our models and metrics as in Table 4.1 "
               f"(Parzen: mean ± std over {first['protocol'].get('runs')} runs). Windows of "
               f"{classifier['protocol']['window']} frames: train {w['train']:,}, validation {w['val']:,}, test "
               f"{w['test']:,}. The emotion classifier ({classifier['experiment']}) scores {acc:.1f}% on the real "
               f"test windows. No thesis numbers: the thesis did not use this dataset.")
    return header, out, caption


def _write(out: Path, header, rows, meta: dict) -> None:
    print(f"wrote {write_extra_table(out, header, rows, meta)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.motion.table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--classifier", required=True, help="metrics.json of the emotion classifier experiment")
    ap.add_argument("--reference", default=paths.REFERENCE_NUMBERS)
    ap.add_argument("--row", action="append", default=[], metavar="MODEL=METRICS",
                    help="a model's metrics.json: builds a Table 4.1-shaped table of ours (repeatable)")
    ap.add_argument("--number", default=NUMBER, help="table number shown in the report")
    ap.add_argument("--title", default=TITLE)
    ap.add_argument("--out", required=True, help="CSV to write (its .json sidecar is written beside it)")
    args = ap.parse_args(argv)
    classifier = _load_json(args.classifier)
    if args.row:
        pairs = [r.split("=", 1) for r in args.row]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError("--row takes MODEL=PATH/metrics.json")
        header, rows, caption = build_results([(label, _model_metrics(path)) for label, path in pairs], classifier)
    else:
        header, rows, caption = build(classifier, args.reference)
    _write(Path(args.out), header, rows, {"number": args.number, "title": args.title, "caption": caption})
    return 0


if __name__ == "__main__":
    run_cli(main)
