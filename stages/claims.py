"""The claims page: does each chapter's headline thesis result appear in our numbers? (issue 16)

    python -m stages.claims --profile cpu --out reports/tables/claims.csv \
        --metrics results/cpu/<experiment>/metrics.json --metrics ...

A verdict is computed, never typed: each claim is a list of comparisons between numbers of metrics.json
files, decided with a 95% interval, and the report renders one row per claim (Table C.1, beyond the thesis).

How a chapter declares its claims
---------------------------------
Put ``claims.yaml`` in the chapter's package folder (``stages/<chapter>/claims.yaml``; found through the
chapter list of stages/chapters.py, nothing else to register). Its shape::

    claims:
      - id: srvp-beats-svg-smmnist            # unique over all chapters
        claim: SRVP beats SVG on SM-MNIST in PSNR and SSIM
        thesis: Table 3.2                      # where the thesis shows it (text)
        tests:                                 # the claim holds when every test holds
          - left:  {experiment: srvp-smmnist, metric: PSNR,
                    thesis: "3.2|SM-MNIST (Stochastic Moving MNIST)|SRVP (ours)|PSNR"}
            op: ">"                            # ">" or "<"
            right: {experiment: svg-smmnist, metric: PSNR, thesis: "3.2|...|SVG|PSNR"}
          - left: {experiment: <exp>, metric: <error>}
            op: "<"
            right: {experiment: <exp>, metric: <error of chance>}
            scale: 0.5                         # optional: compare with scale x right (default 1)

An operand is ``{experiment, metric}`` (the ``metrics.<metric>`` entry of that experiment's metrics.json:
``mean`` and ``ci95``, the 95% half width), ``{experiment, table, metric}`` for an experiment that fills
several thesis tables (its ``metrics_<table>.json``, see stages/paths.report_files), or ``{value, why}`` (a
constant, with the reason it is the threshold). ``thesis`` (optional) names an id of
reference/thesis_numbers.yaml: the same test is then also decided on the thesis's numbers (their
``plus_minus`` as the half width), a check that the claim is read right.

Deciding a test: the margin m = left - scale x right for ">" (scale x right - left for "<"), its 95%
half width h = sqrt(h_left^2 + (scale x h_right)^2) (the two means treated as independent: conservative
for paired measurements). The test holds when the interval [m - h, m + h] lies above 0. A claim is

- **supported** when every test holds;
- **not supported** when all its numbers exist and some test does not hold (at a small profile this is the
  honest outcome: smoke models are too small for most effects);
- **not run at this scale** when an experiment it reads is not part of this profile or has no such metric
  (status not "ok"), e.g. FVD on the CPU profiles or a dataset only the paper profile downloads.

A metric whose ``ci95`` is null (a single number, e.g. one run) counts with a zero half width, and the row
says so.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from stages import paths
from stages.extra_table import write_extra_table
from stages.errors import ConfigError, DataError, run_cli
from stages.registry import safe_load

CLAIMS_FILE = "claims.yaml"
NUMBER, TITLE = "C.1", "Thesis claims: does each headline result appear in our numbers?"
SUPPORTED, NOT_SUPPORTED, NOT_RUN = "supported", "not supported", "not run at this scale"
OPS = (">", "<")
CSV = "reports/tables/claims.csv"


@dataclass
class Number:
    mean: float
    half: float | None   # 95% half width; None: no interval (one run)
    constant: bool = False

    def text(self) -> str:
        return f"{self.mean:.4g}" + ("" if self.half is None or self.constant else f" ± {self.half:.2g}")


@dataclass
class Decision:
    verdict: str
    margin: float | None = None
    half: float | None = None
    reason: str = ""

    def text(self) -> str:
        if self.margin is None:
            return self.reason
        return f"margin {self.margin:.4g}, 95% CI [{self.margin - self.half:.4g}, {self.margin + self.half:.4g}]"


# ------------------------------------------------------------------------------------------------ declarations

def claims_files() -> list[tuple[str, Path]]:
    """(chapter title, claims.yaml) of every chapter that declares claims, in thesis order."""
    from stages import chapters

    root = Path(__file__).resolve().parents[1]
    out = []
    for name in chapters.CHAPTERS + [c.strip() for c in os.environ.get(chapters.EXTRA_ENV, "").split(",") if c.strip()]:
        module = importlib.import_module(name)
        path = Path(module.__file__).resolve().parent / CLAIMS_FILE
        if path.exists():
            out.append((module.CHAPTER.title, path.relative_to(root) if path.is_relative_to(root) else path))
    return out


def load_claims(files: list[tuple[str, Path]] | None = None) -> list[dict]:
    """Every declared claim (chapter title under ``chapter``), checked: a bad declaration is a ConfigError
    naming its file and the fix."""
    claims, seen = [], set()
    for title, path in claims_files() if files is None else files:
        try:
            doc = safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML ({exc}): fix it (see stages/claims.py)") from exc
        for i, c in enumerate(doc.get("claims") or []):
            where = f"{path}: claims[{i}]"
            _check_claim(c, where)
            if c["id"] in seen:
                raise ConfigError(f"{where}: id {c['id']!r} is declared twice; claim ids must be unique")
            seen.add(c["id"])
            claims.append({**c, "chapter": title})
    return claims


def _check_claim(c: dict, where: str) -> None:
    if not isinstance(c, dict) or not {"id", "claim", "thesis", "tests"} <= set(c):
        raise ConfigError(f"{where} needs id, claim, thesis and tests (see stages/claims.py)")
    if not c["tests"]:
        raise ConfigError(f"{where} ({c['id']}): give at least one test")
    for j, t in enumerate(c["tests"]):
        if t.get("op") not in OPS:
            raise ConfigError(f"{where} ({c['id']}) tests[{j}]: op must be one of {OPS}, not {t.get('op')!r}")
        for side in ("left", "right"):
            o = t.get(side)
            if not isinstance(o, dict) or not ({"experiment", "metric"} <= set(o) or "value" in o):
                raise ConfigError(f"{where} ({c['id']}) tests[{j}].{side}: give {{experiment, metric}} or "
                                  f"{{value, why}}")
        if not isinstance(t.get("scale", 1), (int, float)) or t.get("scale", 1) <= 0:
            raise ConfigError(f"{where} ({c['id']}) tests[{j}].scale must be a positive number")


def experiments_read(claims: list[dict]) -> set[str]:
    return {o["experiment"] for c in claims for t in c["tests"] for o in (t["left"], t["right"]) if "experiment" in o}


# ------------------------------------------------------------------------------------------------ deciding

def decide_test(left: Number | None, right: Number | None, op: str, scale: float = 1.0) -> Decision:
    """One comparison: ``left op scale * right`` with its 95% interval; None operands: not run."""
    if left is None or right is None:
        return Decision(NOT_RUN, reason="no number at this scale")
    margin = left.mean - scale * right.mean if op == ">" else scale * right.mean - left.mean
    half = math.sqrt((left.half or 0.0) ** 2 + (scale * (right.half or 0.0)) ** 2)
    return Decision(SUPPORTED if margin - half > 0 else NOT_SUPPORTED, margin, half)


def combine(decisions: list[Decision]) -> str:
    verdicts = {d.verdict for d in decisions}
    if NOT_RUN in verdicts:
        return NOT_RUN
    return SUPPORTED if verdicts == {SUPPORTED} else NOT_SUPPORTED


def metrics_key(experiment: str, table: str | None = None) -> str:
    """Key of a metrics file in ``read_metrics``'s result: the experiment, plus the table for per-table files."""
    return experiment if table is None else f"{experiment}@{table}"


def our_number(operand: dict, metrics: dict[str, dict]) -> Number | None:
    """The operand's value in our metrics (by experiment), or None when it was not run / not measured."""
    if "value" in operand:
        return Number(float(operand["value"]), 0.0, constant=True)
    key = metrics_key(operand["experiment"], operand.get("table"))
    m = (metrics.get(key) or {}).get("metrics", {}).get(operand["metric"])
    if not m or m.get("status") != "ok" or m.get("mean") is None or not math.isfinite(m["mean"]):
        return None
    return Number(float(m["mean"]), None if m.get("ci95") is None else float(m["ci95"]))


def thesis_number(operand: dict, reference: dict[str, dict]) -> Number | None:
    if "value" in operand:
        return Number(float(operand["value"]), 0.0, constant=True)
    ref = reference.get(operand.get("thesis", ""))
    if not ref or not isinstance(ref.get("value"), (int, float)):
        return None
    return Number(float(ref["value"]), None if ref.get("plus_minus") is None else float(ref["plus_minus"]))


def _operand_name(o: dict) -> str:
    return f"{o['value']:g}" if "value" in o else f"{o['metric']}({o['experiment']})"


def rule_text(t: dict) -> str:
    scale = t.get("scale", 1)
    right = _operand_name(t["right"])
    return f"{_operand_name(t['left'])} {t['op']} {'' if scale == 1 else f'{scale:g} × '}{right}"


def decide_claim(claim: dict, metrics: dict[str, dict], reference: dict[str, dict]) -> dict:
    """One row of the page: the rule, the thesis's and our numbers, each test's margin and the verdicts."""
    ours, theirs, rules, lines_ours, lines_thesis = [], [], [], [], []
    has_thesis = any("thesis" in o for t in claim["tests"] for o in (t["left"], t["right"]))
    for t in claim["tests"]:
        scale = float(t.get("scale", 1))
        rules.append(rule_text(t))
        left, right = our_number(t["left"], metrics), our_number(t["right"], metrics)
        d = decide_test(left, right, t["op"], scale)
        ours.append(d)
        vals = " vs ".join("—" if n is None else n.text() for n in (left, right))
        if d.margin is not None and any(n.half is None for n in (left, right)):
            lines_ours.append(f"{vals}: margin {d.margin:.4g} (no interval: a single number, e.g. one run)")
        else:
            lines_ours.append(f"{vals}: {d.text()}")
        if any("thesis" in o for o in (t["left"], t["right"])):   # tests without thesis numbers are ours only
            tl, tr = thesis_number(t["left"], reference), thesis_number(t["right"], reference)
            td = decide_test(tl, tr, t["op"], scale)
            theirs.append(td)
            lines_thesis.append(" vs ".join("—" if n is None else n.text() for n in (tl, tr)))
    thesis_verdict = combine(theirs) if has_thesis else ""
    return {"id": claim["id"], "chapter": claim["chapter"], "claim": claim["claim"], "thesis": claim["thesis"],
            "rule": "; ".join(rules), "thesis_numbers": "; ".join(lines_thesis),
            "thesis_verdict": thesis_verdict.replace(NOT_RUN, "no number"),
            "ours": "; ".join(lines_ours), "verdict": combine(ours)}


# ------------------------------------------------------------------------------------------------ inputs

def read_metrics(files: list[str]) -> dict[str, dict]:
    """Metrics files keyed by ``metrics_key`` (a ``metrics_<table>.json`` by experiment and table); a missing
    or unreadable file is a DataError."""
    out = {}
    for f in files:
        try:
            data = json.loads(Path(f).read_text())
            per_table = Path(f).name.startswith("metrics_")   # metrics_<table>.json (paths.report_files)
            out[metrics_key(data["experiment"], data["report"]["table"] if per_table else None)] = data
        except FileNotFoundError:
            raise DataError(f"{f} not found: run its evaluate stage first (python -m stages.evaluate)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{f} is not a metrics.json ({exc}): rerun its evaluate stage") from exc
    return out


def read_reference(path: str) -> dict[str, dict]:
    try:
        doc = safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path} not found: the thesis reference numbers ship with the repository") from None
    return {n["id"]: n for n in doc.get("numbers", [])}


def page(claims: list[dict], metrics: dict[str, dict], reference: dict[str, dict], profile: str):
    """(header, rows, caption) of the claims table."""
    header = ["chapter", "thesis claim", "decided on", "thesis numbers", f"ours (profile {profile})", "verdict"]
    rows = []
    for c in claims:
        r = decide_claim(c, metrics, reference)
        thesis = c["thesis"] + (f": {r['thesis_numbers']} ({r['thesis_verdict']})" if r["thesis_numbers"] else "")
        rows.append([r["chapter"], r["claim"], r["rule"], thesis, r["ours"], r["verdict"]])
    caption = (f"Each verdict is computed from the numbers shown (stages/claims.py; declarations in "
               f"stages/<chapter>/claims.yaml): a test holds when the 95% interval of its margin lies above 0 "
               f"(half widths combined as sqrt(h1^2 + h2^2)); supported = every test holds; not run at this "
               f"scale = an experiment or metric it needs is not part of profile {profile}. Small profiles train "
               f"small models briefly, so 'not supported' there says the effect has not appeared yet, not that "
               f"the thesis is wrong.")
    return header, rows, caption


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.claims", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--metrics", action="append", default=[],
                    help="metrics.json of an experiment of this profile (repeatable; absent ones: not run)")
    ap.add_argument("--reference", default=paths.REFERENCE_NUMBERS, help="the thesis's numbers")
    ap.add_argument("--out", default=CSV, help="CSV to write (its .json sidecar is written beside it)")
    args = ap.parse_args(argv)
    header, rows, caption = page(load_claims(), read_metrics(args.metrics), read_reference(args.reference),
                                 args.profile)
    out = write_extra_table(args.out, header, rows, {"number": NUMBER, "title": TITLE, "caption": caption})
    print(f"wrote {out}: " + ", ".join(f"{r[5]}" for r in rows))
    return 0


def claims_stage(profile: str, produced: set[str]):
    """The graph stage writing the claims table: reads the metrics of the claimed experiments this
    profile produces (``produced``: every stage output of the graph)."""
    from stages.graph import Stage, cli, step_code
    from stages.registry import config_digest

    claims = load_claims()
    files = sorted(f for e in experiments_read(claims) for f in produced
                   if f.startswith(paths.run_dir(profile, e) + "/metrics") and f.endswith(".json"))
    cmd = cli("claims", "--profile", profile, "--out", CSV)
    for f in files:
        cmd += ["--metrics", f]
    decls = [str(p) for _, p in claims_files()]
    return Stage(name="table_claims", cmd=cmd,
                 deps=step_code("claims") + decls + [paths.REFERENCE_NUMBERS] + files,
                 outs=[CSV, CSV.replace(".csv", ".json")], params=[], digest=config_digest([profile, files]),
                 extra={"report_table": True}, chapter="Thesis claims (all chapters)")


if __name__ == "__main__":
    run_cli(main)
