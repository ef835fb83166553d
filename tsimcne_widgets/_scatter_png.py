"""Static PNG rendering of an EmbeddingScatter's current frame with Pillow (no browser)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from .labels import DEFAULT_COLOR, viridis_rgb


def _hex_rgb(c: str) -> tuple[int, int, int]:
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def point_colors(widget) -> np.ndarray:
    """(n, 3) uint8 RGB colours of the displayed points, as the browser draws them."""
    lab = widget._labels_obj
    n = widget.n_points
    idx = np.arange(n) if widget._index is None else widget._index
    if lab.kind == "categorical":
        pal = np.array([_hex_rgb(c) for c in widget._colors], dtype=np.uint8)
        return pal[lab.values[idx] % len(pal)]
    if lab.kind == "continuous":
        return viridis_rgb(lab.values[idx], *lab.value_range)
    return np.tile(np.array([_hex_rgb(DEFAULT_COLOR)], dtype=np.uint8), (n, 1))


def render_png(widget, size: int = 800, background: str = "white") -> bytes:
    xy = widget.xy.astype(np.float64)
    keep = np.ones(len(xy), dtype=bool)
    if widget.hidden and widget._labels_obj.kind == "categorical":
        idx = np.arange(len(xy)) if widget._index is None else widget._index
        keep = ~np.isin(widget._labels_obj.values[idx], widget.hidden)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float(max(hi - lo)) or 1.0
    margin = 0.04 * size
    p = (xy - (lo + hi) / 2) / span * (size - 2 * margin) + size / 2
    p[:, 1] = size - p[:, 1]  # y up
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    r = max(0.5, widget.point_size * size / 900)
    cols = point_colors(widget)
    for (x, y), c in zip(p[keep], cols[keep], strict=True):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in c))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
