"""Tables beyond the thesis in the report: the MV-BiGAN table writer, --extra-table rendering, graph wiring."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("reportlab")

from stages import report  # noqa: E402
from stages.errors import DataError  # noqa: E402
from stages.graph import build_graph  # noqa: E402
from stages.mvbigan import table  # noqa: E402
from stages.registry import load_params  # noqa: E402
from tests.test_report import page_texts  # noqa: E402


def _metrics(exp: str, lam: float, div: list[float]) -> dict:
    m = {}
    for k, d in enumerate(div, start=1):
        m[f"diversity_k{k}"] = {"status": "ok", "mean": d, "ci95": 0.01, "n": 10}
        m[f"best_error_k{k}"] = {"status": "ok", "mean": 0.3 - 0.01 * k, "ci95": 0.002, "n": 10}
    return {"experiment": exp, "profile": "smoke", "lambda": lam, "metrics": m,
            "protocol": {"n_examples": 10, "n_samples": 5, "n_views": len(div), "seed": 0}}


@pytest.fixture
def extra(tmp_path):
    a, b = tmp_path / "kl.json", tmp_path / "nokl.json"
    a.write_text(json.dumps(_metrics("with", 1e-3, [0.30, 0.20, 0.12, 0.05])))
    b.write_text(json.dumps(_metrics("without", 0.0, [0.30, 0.29, 0.31, 0.30])))
    out = tmp_path / "tables" / "extra_mvbigan_diversity.csv"
    assert table.main(["--profile", "smoke", "--with-kl", str(a), "--without-kl", str(b), "--out", str(out)]) == 0
    return out


def test_table_writer_rows_and_sidecar(extra):
    lines = extra.read_text().splitlines()
    assert lines[0].startswith("views,") and len(lines) == 5
    assert lines[2].split(",")[1:3] == ["0.2000 ± 0.0100", "0.2900 ± 0.0100"]
    meta = json.loads(extra.with_suffix(".json").read_text())
    assert meta["number"] == "B.1" and "Not a thesis table" in meta["caption"]


def test_report_renders_the_extra_table_as_text(extra, tmp_path):
    out = tmp_path / "r.pdf"
    report.main(["--profile", "smoke", "--out", str(out), "--extra-table", str(extra)])
    text = "\n".join(page_texts(out.read_bytes()))
    assert "B.1 (beyond the thesis)" in text and "0.1200 ± 0.0100" in text and "0.3100" in text
    first = out.read_bytes()
    report.main(["--profile", "smoke", "--out", str(out), "--extra-table", str(extra)])
    assert out.read_bytes() == first                       # still byte-identical re-renders


def test_bad_extra_tables_are_data_errors(extra, tmp_path):
    extra.with_suffix(".json").write_text(json.dumps({"number": "B.1"}))
    with pytest.raises(DataError, match="needs string keys"):
        report.read_extra_table(extra)
    extra.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="sidecar .* not found"):
        report.read_extra_table(extra)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1\n")
    with pytest.raises(DataError, match="same width"):
        report.read_extra_table(ragged)
    with pytest.raises(DataError, match="evaluate stage"):
        table.main(["--profile", "smoke", "--with-kl", str(tmp_path / "none.json"), "--without-kl", str(ragged),
                    "--out", str(tmp_path / "t.csv")])


def test_graph_passes_the_table_to_the_report():
    stages = build_graph(load_params(), "smoke")
    writer = next(s for s in stages if s.extra.get("report_table"))
    rep = stages[-1]
    assert rep.name == "report"
    assert rep.cmd[rep.cmd.index("--extra-table") + 1] == writer.outs[0]
    assert set(writer.outs) <= set(rep.deps)
