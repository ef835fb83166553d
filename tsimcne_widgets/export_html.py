"""Standalone HTML export of a method comparison, built with bokeh.

One self-contained file (bokeh's JS inlined, thumbnails as embedded PNGs): every panel
draws from one shared ColumnDataSource, so a lasso or box selection in any panel selects
the same points in all of them, in the browser, without a kernel. Each class is its own
renderer (a view of that source), so that a click on its legend entry hides it, in
every panel at once.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from ._thumbs import data_url, thumbnail_png
from .labels import DEFAULT_COLOR, encode_labels, viridis_hex

__all__ = ["save_html"]


def _column_key(name: str, i: int) -> str:
    return f"m{i}"  # user strings never become JS identifiers or field names


def _check_selection(selection, n: int) -> list[int]:
    if selection is None:
        return []
    idx = np.asarray(selection)
    if idx.size == 0:
        return []
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"selection must be a 1D array of point indices, got dtype "
                        f"{idx.dtype} and shape {idx.shape}.")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"selection holds indices outside [0, {n}), e.g. "
                         f"{int(idx[(idx < 0) | (idx >= n)][0])}.")
    return sorted({int(i) for i in idx})


def save_html(path, embeddings: dict, *, labels=None, class_names=None, images=None,
              metadata: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None,
              title: str = "Method comparison", thumbnails: bool | str = "auto",
              panel_size: int = 380, axes: bool = False, selection=None) -> Path:
    """Write the comparison to one self-contained HTML file.

    Parameters
    ----------
    path : str or Path
        Where to write the file.
    embeddings : dict of str to array of shape (n_samples, 2)
        One panel per entry, in order.
    labels : array-like of shape (n_samples,), optional
        Colours the points, by the rule and palette of :mod:`tsimcne_widgets.labels` (the
        widgets' colours). Classes make the legend: one entry per class, and a click on an
        entry hides that class in every panel; continuous values get a colour bar.
    class_names : sequence of str, optional
        Names of the label codes, for the legend and tooltips.
    images : optional
        Anything :func:`tsimcne_widgets.as_images` accepts; thumbnails in the tooltips.
    metadata : pandas.DataFrame, optional
        Extra tooltip rows.
    metrics : pandas.DataFrame, optional
        A metrics table under the panels.
    title : str, default="Method comparison"
    thumbnails : bool or 'auto', default='auto'
        'auto' embeds thumbnails for up to 20,000 points.
    panel_size : int, default=380
        Width and height of each panel's plot area, in pixels.
    axes : bool, default=False
        Draw x and y axes with ticks on every panel.
    selection : array-like of int, optional
        Indices selected when the file opens; the other points are dimmed.

    Returns
    -------
    Path
    """
    from bokeh.core.properties import value
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import (
        CDSView,
        ColorBar,
        ColumnDataSource,
        Div,
        GroupFilter,
        HoverTool,
        Legend,
        LegendItem,
        LinearColorMapper,
    )
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    if not isinstance(axes, bool | np.bool_):
        raise TypeError(f"axes must be True or False, got {type(axes).__name__}.")
    names = list(embeddings)
    n = len(next(iter(embeddings.values())))
    data = {"index": np.arange(n)}
    for i, name in enumerate(names):
        Z = np.asarray(embeddings[name], dtype=np.float64)
        data[f"x_{_column_key(name, i)}"] = Z[:, 0]
        data[f"y_{_column_key(name, i)}"] = Z[:, 1]
    selected = _check_selection(selection, n)
    enc = encode_labels(labels, n, class_names)
    # Classes in code order, as in the widgets' legends (unused categories included).
    cats = list(enc.names)
    if enc.kind == "none":
        data["label"] = [""] * n
        data["color"] = [DEFAULT_COLOR] * n
    else:
        data["label"] = enc.text()
        data["color"] = enc.point_colors()
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
    source.selected.indices = selected

    # Bokeh escapes @field values in HTML tooltips; only our own markup is raw.
    rows = ["<div>#@index <b>@label</b></div>"]
    rows += [f"<div>{html.escape(col)}: @{key}</div>" for col, key in meta_cols]
    if use_thumbs:
        rows.insert(0, "<img src='@thumb' width='40' height='40' "
                       "style='image-rendering:pixelated'>")
    tooltip = "<div class='tsw-tip'>" + "".join(rows) + "</div>"

    # One renderer per class (all views of the one source, which keeps the brushing
    # linked); without labels, one renderer for all points.
    groups = [(j, GroupFilter(column_name="label", group=c)) for j, c in enumerate(cats)]
    figs, per_class = [], []
    for i, name in enumerate(names):
        key = _column_key(name, i)
        fig = figure(title=str(name), frame_width=panel_size, frame_height=panel_size,
                     tools="pan,wheel_zoom,box_select,lasso_select,reset,save",
                     active_drag="box_select", name=f"panel{i}")
        renderers = []
        for j, group in groups or [(0, None)]:
            view = CDSView() if group is None else CDSView(filter=group)
            renderers.append(fig.scatter(
                f"x_{key}", f"y_{key}", source=source, view=view, color="color", size=4,
                alpha=0.8, selection_color="color", nonselection_alpha=0.08,
                name=f"points{i}-{j}"))
        fig.add_tools(HoverTool(tooltips=tooltip, renderers=renderers))
        fig.axis.visible = axes
        fig.grid.visible = False
        figs.append(fig)
        per_class.append(renderers)
    if cats:
        # The legend sits beside the first panel; hiding a class there hides it in all.
        rows = max(1, panel_size // 20)
        legend = Legend(
            items=[LegendItem(label=value(c), renderers=[per_class[0][j]])
                   for j, c in enumerate(cats)],
            click_policy="hide", location="top_left", name="legend",
            ncols=-(-len(cats) // rows), title="classes (click to hide)")
        figs[0].add_layout(legend, "right")
        for others in per_class[1:]:
            for first, other in zip(per_class[0], others, strict=True):
                first.js_link("visible", other, "visible")
    elif enc.kind == "continuous":
        lo, hi = enc.value_range
        mapper = LinearColorMapper(palette=viridis_hex(256), low=lo, high=hi)
        figs[0].add_layout(ColorBar(color_mapper=mapper, title=enc.title or None,
                                    name="colorbar"), "right")
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
