"""The claims page (stages/claims.py): verdicts computed from synthetic metrics, both outcomes and not-run."""
from __future__ import annotations

import csv
import json
import math

import pytest

from stages import claims as C
from stages.errors import ConfigError, DataError


def _metric(mean, ci95=0.01, status="ok"):
    return {"status": status, "mean": mean, "ci95": ci95, "n": 100}


def _metrics(**per_exp) -> dict:
    return {exp: {"experiment": exp, "metrics": m} for exp, m in per_exp.items()}


BEATS = {"id": "a-beats-b", "claim": "A beats B", "thesis": "Table X", "chapter": "ch",
         "tests": [{"left": {"experiment": "a", "metric": "PSNR", "thesis": "X|A|PSNR"}, "op": ">",
                    "right": {"experiment": "b", "metric": "PSNR", "thesis": "X|B|PSNR"}},
                   {"left": {"experiment": "a", "metric": "LPIPS"}, "op": "<",
                    "right": {"experiment": "b", "metric": "LPIPS"}}]}
REFERENCE = {"X|A|PSNR": {"value": 17.0, "plus_minus": 0.1}, "X|B|PSNR": {"value": 14.0, "plus_minus": 0.1}}


def test_decide_test_margin_and_interval_by_hand():
    d = C.decide_test(C.Number(10.0, 0.3), C.Number(9.0, 0.4), ">")
    assert d.verdict == C.SUPPORTED and d.margin == pytest.approx(1.0) and d.half == pytest.approx(0.5)
    # the interval [1 - 1.2, 1 + 1.2] straddles 0: not supported although the means are ordered
    d = C.decide_test(C.Number(10.0, 0.8), C.Number(9.0, 0.9), ">")
    assert d.verdict == C.NOT_SUPPORTED and d.half == pytest.approx(math.hypot(0.8, 0.9))
    # "<" with a scale: 0.1 < 0.5 * 0.4 -> margin 0.1
    d = C.decide_test(C.Number(0.1, 0.0), C.Number(0.4, 0.02), "<", scale=0.5)
    assert d.verdict == C.SUPPORTED and d.margin == pytest.approx(0.1) and d.half == pytest.approx(0.01)
    assert C.decide_test(None, C.Number(1, 0), ">").verdict == C.NOT_RUN


def test_claim_supported_when_every_test_holds():
    m = _metrics(a={"PSNR": _metric(16.0, 0.1), "LPIPS": _metric(0.05, 0.002)},
                 b={"PSNR": _metric(14.0, 0.1), "LPIPS": _metric(0.09, 0.003)})
    row = C.decide_claim(BEATS, m, REFERENCE)
    assert row["verdict"] == C.SUPPORTED
    assert row["thesis_verdict"] == C.SUPPORTED          # 17.0 ± 0.1 vs 14.0 ± 0.1
    assert "16 ± 0.1 vs 14 ± 0.1" in row["ours"] and "margin 2" in row["ours"]


def test_claim_not_supported_when_one_test_fails_or_is_within_noise():
    worse = _metrics(a={"PSNR": _metric(13.39, 0.1), "LPIPS": _metric(0.05, 0.002)},
                     b={"PSNR": _metric(13.77, 0.1), "LPIPS": _metric(0.09, 0.003)})
    assert C.decide_claim(BEATS, worse, REFERENCE)["verdict"] == C.NOT_SUPPORTED
    tie = _metrics(a={"PSNR": _metric(14.05, 0.1), "LPIPS": _metric(0.05, 0.002)},
                   b={"PSNR": _metric(14.0, 0.1), "LPIPS": _metric(0.09, 0.003)})
    assert C.decide_claim(BEATS, tie, REFERENCE)["verdict"] == C.NOT_SUPPORTED


@pytest.mark.parametrize("metrics", [
    _metrics(a={"PSNR": _metric(16.0), "LPIPS": _metric(0.05)}),                          # b not in the profile
    _metrics(a={"PSNR": _metric(16.0), "LPIPS": _metric(0.05)},
             b={"PSNR": _metric(14.0), "LPIPS": {"status": "unavailable", "reason": "no weights"}}),
    {},                                                                                       # nothing ran
])
def test_claim_not_run_when_a_number_is_missing(metrics):
    assert C.decide_claim(BEATS, metrics, REFERENCE)["verdict"] == C.NOT_RUN


def test_not_run_wins_over_a_failed_test():
    m = _metrics(a={"PSNR": _metric(10.0), "LPIPS": _metric(0.05)}, b={"PSNR": _metric(14.0)})
    assert C.decide_claim(BEATS, m, REFERENCE)["verdict"] == C.NOT_RUN


def test_constant_operand_and_one_run_without_interval():
    claim = {"id": "c", "claim": "IoU > 0.5", "thesis": "T", "chapter": "ch",
             "tests": [{"left": {"experiment": "r", "metric": "IoU"}, "op": ">", "right": {"value": 0.5, "why": "w"}}]}
    row = C.decide_claim(claim, _metrics(r={"IoU": _metric(0.6, None)}), {})
    assert row["verdict"] == C.SUPPORTED and "no interval" in row["ours"] and "vs 0.5:" in row["ours"]
    assert C.decide_claim(claim, _metrics(r={"IoU": _metric(0.4, None)}), {})["verdict"] == C.NOT_SUPPORTED


def test_declared_claims_load_and_name_their_experiments():
    claims = C.load_claims()
    ids = {c["id"] for c in claims}
    assert {"mvbigan-samples-agree-with-views", "srvp-beats-svg-smmnist", "redo-segments-flowers",
            "gmv-generated-views-keep-identity", "cgmv-keeps-input-identity"} <= ids
    assert {"mvbigan-mnist-4views", "srvp-smmnist", "svg-smmnist", "redo-flowers"} <= C.experiments_read(claims)
    # every thesis id a claim names exists in the reference numbers, and the thesis's own numbers support
    # each claim that has them (a claim the thesis contradicts is misread)
    ref = C.read_reference("reference/thesis_numbers.yaml")
    for c in claims:
        for t in c["tests"]:
            for side in ("left", "right"):
                assert t[side].get("thesis", next(iter(ref))) in ref, (c["id"], t[side])
        row = C.decide_claim(c, {}, ref)
        assert row["thesis_verdict"] in ("", C.SUPPORTED), (c["id"], row["thesis_numbers"])


@pytest.mark.parametrize("doc, message", [
    ("claims:\n  - {id: x, claim: c, thesis: t}\n", "needs id, claim, thesis and tests"),
    ("claims:\n  - {id: x, claim: c, thesis: t, tests: [{left: {value: 1}, op: '>=', right: {value: 0}}]}\n",
     "op must be one of"),
    ("claims:\n  - {id: x, claim: c, thesis: t, tests: [{left: {experiment: e}, op: '>', right: {value: 0}}]}\n",
     "give {experiment, metric}"),
    ("claims:\n  - {id: x, claim: c, thesis: t, tests: [{left: {value: 1}, op: '>', right: {value: 0}, scale: 0}]}\n",
     "scale must be a positive"),
    ("claims: [\n", "not valid YAML"),
])
def test_bad_declarations_name_the_file(tmp_path, doc, message):
    path = tmp_path / "claims.yaml"
    path.write_text(doc)
    with pytest.raises(ConfigError, match=message) as err:
        C.load_claims([("ch", path)])
    assert str(path) in str(err.value)


def test_duplicate_ids_are_refused(tmp_path):
    doc = "claims:\n  - {id: x, claim: c, thesis: t, tests: [{left: {value: 1}, op: '>', right: {value: 0}}]}\n"
    (tmp_path / "a.yaml").write_text(doc)
    (tmp_path / "b.yaml").write_text(doc)
    with pytest.raises(ConfigError, match="declared twice"):
        C.load_claims([("a", tmp_path / "a.yaml"), ("b", tmp_path / "b.yaml")])


def test_cli_writes_the_page_and_refuses_a_broken_metrics_file(tmp_path, monkeypatch):
    good = tmp_path / "m.json"
    good.write_text(json.dumps({"experiment": "svg-smmnist", "metrics": {"PSNR": _metric(14.0)}}))
    out = tmp_path / "claims.csv"
    assert C.main(["--profile", "smoke", "--metrics", str(good), "--out", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0][-1] == "verdict" and len(rows) - 1 == len(C.load_claims())
    assert {r[-1] for r in rows[1:]} == {C.NOT_RUN}             # srvp-smmnist absent: nothing decidable
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["number"] == C.NUMBER and "95%" in meta["caption"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="bad.json"):
        C.main(["--profile", "smoke", "--metrics", str(bad), "--out", str(tmp_path / "x.csv")])
    assert not (tmp_path / "x.csv").exists()


def test_graph_has_the_claims_stage_feeding_the_report():
    from stages.graph import build_graph
    from stages.registry import load_params

    stages = {st.name: st for st in build_graph(load_params(), "ci")}
    claims = stages["table_claims"]
    assert C.CSV in stages["report"].deps and "stages/mvbigan/claims.yaml" in claims.deps
    produced = {o for st in stages.values() for o in st.outs}
    assert all(d in produced for d in claims.deps if d.endswith("metrics.json"))
    # experiments filling several tables feed one metrics_<table>.json per table (Chapter 4.2's claims)
    assert "results/ci/gmv-celeba/metrics_4_3.json" in claims.deps
    assert "results/ci/cgmv-celeba/metrics_4_4.json" in claims.deps


def test_per_table_operands_read_the_metrics_file_of_their_table(tmp_path):
    """An experiment filling Tables 4.3 and 4.5 writes metrics_4_3.json and metrics_4_5.json; an operand with
    ``table`` reads only its table's file, so equal metric names in two tables cannot be confused."""
    files = []
    for table, auc in (("4.3", 80.0), ("4.5", 10.0)):
        f = tmp_path / f"metrics_{table.replace('.', '_')}.json"
        f.write_text(json.dumps({"experiment": "g", "report": {"table": table},
                                 "metrics": {"AUC": _metric(auc, None)}}))
        files.append(str(f))
    metrics = C.read_metrics(files)
    assert set(metrics) == {"g@4.3", "g@4.5"}
    claim = {"id": "c", "claim": "AUC above chance", "thesis": "T", "chapter": "ch",
             "tests": [{"left": {"experiment": "g", "table": "4.3", "metric": "AUC"}, "op": ">",
                        "right": {"value": 50, "why": "chance"}}]}
    assert C.decide_claim(claim, metrics, {})["verdict"] == C.SUPPORTED          # 80 > 50 in Table 4.3
    claim["tests"][0]["left"]["table"] = "4.5"
    assert C.decide_claim(claim, metrics, {})["verdict"] == C.NOT_SUPPORTED      # 10 in Table 4.5
    claim["tests"][0]["left"].pop("table")
    assert C.decide_claim(claim, metrics, {})["verdict"] == C.NOT_RUN            # no metrics.json for g
