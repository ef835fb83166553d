"""Standalone HTML export of a method comparison, built with bokeh.

One self-contained file (bokeh's JS inlined, thumbnails as embedded PNGs): every panel
draws from one shared ColumnDataSource, so a lasso or box selection in any panel selects
the same points in all of them, in the browser, without a kernel.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from ._thumbs import data_url, thumbnail_png

__all__ = ["save_html"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]


def _column_key(name: str, i: int) -> str:
    return f"m{i}"  # user strings never become JS identifiers or field names


def save_html(path, embeddings: dict, *, labels=None, class_names=None, images=None,
              metadata: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None,
              title: str = "Method comparison", thumbnails: bool | str = "auto",
              panel_size: int = 380) -> Path:
    """Write the comparison to one self-contained HTML file. See ``MethodComparison``."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import ColumnDataSource, Div, HoverTool
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    names = list(embeddings)
    n = len(next(iter(embeddings.values())))
    data = {"index": np.arange(n)}
    for i, name in enumerate(names):
        Z = np.asarray(embeddings[name], dtype=np.float64)
        data[f"x_{_column_key(name, i)}"] = Z[:, 0]
        data[f"y_{_column_key(name, i)}"] = Z[:, 1]
    if labels is not None:
        codes = np.asarray(labels)
        text = ([str(class_names[c]) for c in codes] if class_names is not None
                else [str(v) for v in codes])
        cats = sorted(set(text), key=text.index)
        lut = {c: _PALETTE[j % len(_PALETTE)] for j, c in enumerate(cats)}
        data["label"] = text
        data["color"] = [lut[c] for c in text]
    else:
        data["label"] = [""] * n
        data["color"] = [_PALETTE[0]] * n
    meta_cols = []
    if metadata is not None:
        for j, col in enumerate(metadata.columns):
            key = f"meta{j}"
            data[key] = [str(v) for v in metadata[col].to_numpy()]
            meta_cols.append((str(col), key))
    if images is not None:
        from .data import as_images

        images = as_images(images)
    use_thumbs = images is not None and (thumbnails is True or (thumbnails == "auto"
                                                                and n <= 20000))
    if use_thumbs:
        data["thumb"] = [data_url(thumbnail_png(images, i, 40)) for i in range(n)]
    source = ColumnDataSource(data, name="points")

    # Bokeh escapes @field values in HTML tooltips; only our own markup is raw.
    rows = ["<div>#@index <b>@label</b></div>"]
    rows += [f"<div>{html.escape(col)}: @{key}</div>" for col, key in meta_cols]
    if use_thumbs:
        rows.insert(0, "<img src='@thumb' width='40' height='40' "
                       "style='image-rendering:pixelated'>")
    tooltip = "<div class='tsw-tip'>" + "".join(rows) + "</div>"

    figs = []
    for i, name in enumerate(names):
        key = _column_key(name, i)
        fig = figure(title=str(name), width=panel_size, height=panel_size,
                     tools="pan,wheel_zoom,box_select,lasso_select,reset,save",
                     active_drag="box_select", name=f"panel{i}")
        fig.scatter(f"x_{key}", f"y_{key}", source=source, color="color", size=4, alpha=0.8,
                    selection_color="color", nonselection_alpha=0.08, name=f"points{i}")
        fig.add_tools(HoverTool(tooltips=tooltip))
        fig.axis.visible = False
        fig.grid.visible = False
        figs.append(fig)
    ncols = min(3, len(figs))
    grid = gridplot(figs, ncols=ncols, toolbar_location="right")
    parts = [Div(text=f"<h2>{html.escape(title)}</h2>"), grid]
    if metrics is not None:
        from .comparison_metrics import metrics_html

        parts.append(Div(text=metrics_html(metrics), name="metrics"))
    doc = column(*parts)
    path = Path(path)
    path.write_text(file_html(doc, INLINE, title=html.escape(title)), encoding="utf-8")
    return path
