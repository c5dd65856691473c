"""The one renderer of image-grid figures: labelled rows of equally sized tiles -> deterministic PNG bytes.

Every chapter's qualitative figure (frames, samples, redraws) is a grid of tiles with
row labels on the left and optional column labels on top; ``png_bytes`` also serves plots drawn with
matplotlib directly. PNGs carry no timestamp or software tag, so a figure redrawn from the same inputs has
the same bytes.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

GAP = 2          # pixels between tiles
DPI = 100


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def to_rgb(tile: np.ndarray) -> np.ndarray:
    """uint8 [H, W], [1, H, W], [3, H, W] or [H, W, 3] -> [H, W, 3]."""
    if tile.ndim == 3 and tile.shape[0] in (1, 3) and tile.shape[-1] not in (1, 3):
        tile = tile.transpose(1, 2, 0)
    if tile.ndim == 2:
        tile = tile[..., None]
    return np.repeat(tile, 3, axis=2) if tile.shape[2] == 1 else tile


def tile_grid(rows: list[list[np.ndarray | None]], gap_after=frozenset()) -> tuple[np.ndarray, list[float]]:
    """Rows of same-size tiles (None: an empty slot) -> white-gapped RGB canvas and each row's centre height.

    ``gap_after``: indices of rows followed by a wider gap (separates blocks of rows)."""
    first = next(t for row in rows for t in row if t is not None)
    h, w = to_rgb(first).shape[:2]
    n_cols = max(len(row) for row in rows)
    tops, y = [], 0
    for i in range(len(rows)):
        tops.append(y)
        y += h + GAP + (3 * GAP if i in gap_after else 0)
    canvas = np.full((y - GAP, n_cols * (w + GAP) - GAP, 3), 255, np.uint8)
    for top, row in zip(tops, rows):
        for j, tile in enumerate(row):
            if tile is not None:
                canvas[top: top + h, j * (w + GAP): j * (w + GAP) + w] = to_rgb(tile)
    return canvas, [top + h / 2 for top in tops]


def column_centres(n: int, tile_width: int) -> list[float]:
    return [j * (tile_width + GAP) + tile_width / 2 for j in range(n)]


def render_grid(rows: list[tuple[str, list[np.ndarray | None]]], column_labels: list[str] = (),
                gap_after=frozenset()) -> bytes:
    """Labelled rows of tiles -> PNG. Small tiles are enlarged (up to 2x) so that they stay legible."""
    canvas, centres = tile_grid([tiles for _, tiles in rows], gap_after)
    first = next(t for _, tiles in rows for t in tiles if t is not None)
    h, w = to_rgb(first).shape[:2]
    scale = min(2.0, max(1.0, 56 / h))
    left = 0.15 + 0.075 * max((len(label) for label, _ in rows), default=0)
    top = 0.35 if column_labels else 0.1
    width, height = canvas.shape[1] * scale / DPI, canvas.shape[0] * scale / DPI
    fig_w, fig_h = left + width + 0.1, top + height + 0.1
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=DPI)
    ax = fig.add_axes([left / fig_w, 0.1 / fig_h, width / fig_w, height / fig_h])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for x, text in zip(column_centres(len(column_labels), w), column_labels):
        ax.text(x, -3, text, ha="center", va="bottom", fontsize=8)
    for (label, _), y in zip(rows, centres):
        ax.text(-4, y, label, ha="right", va="center", fontsize=9)
    return png_bytes(fig)
