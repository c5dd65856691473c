"""Write a table beyond the thesis (or a thesis table built outside stages.tables): a CSV and its JSON
sidecar (number, title, caption; ``thesis_table: true`` for a thesis table), as stages.report reads them."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from stages.errors import write_bytes_atomic, write_json_atomic


def write_extra_table(out: str | Path, header: list[str], rows: list[list[str]], meta: dict) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    out = Path(out)
    write_json_atomic(out.with_suffix(".json"), meta)
    write_bytes_atomic(out, buf.getvalue().encode())
    return out
