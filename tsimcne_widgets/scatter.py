"""EmbeddingScatter: a WebGL scatter plot of a 2D embedding that can follow a training run.

Positions travel as float32 bytes (x0, y0, x1, y1, ...), labels as uint8/uint16 codes with
the category names sent once, selections as uint32 bytes. Streamed updates are
flow-controlled (one frame in flight, newest wins, rate cap); see
:mod:`tsimcne_widgets._frame_throttle`.
"""

from __future__ import annotations

import html
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from . import _scatter_encoding as sd
from ._callbacks import register
from ._frame_throttle import FrameThrottle
from ._thumbs import data_url, thumbnail_png
from .labels import encode_labels

__all__ = ["EmbeddingScatter"]

_STATIC = Path(__file__).parent / "static" / "scatter.js"
_STYLE = _STATIC.with_suffix(".css")  # esbuild writes it next to the bundle
_TIP_COLUMNS = 8


def _bytes_from_json(value, _widget) -> bytes:
    """The browser sends binary state as a memoryview (or, from old front ends, a list)."""
    if value is None:
        return b""
    if isinstance(value, list | dict):
        return np.asarray(list(value.values()) if isinstance(value, dict) else value,
                          dtype=np.uint32).tobytes()
    return bytes(value)


class EmbeddingScatter(anywidget.AnyWidget):
    """Interactive scatter plot of 2D points with lasso selection and hover thumbnails.

    Parameters
    ----------
    xy : array-like of shape (n_points, 2)
        Positions; must be finite.
    labels : array-like of shape (n_points,), optional
        Classes (ints, strings, bools, a pandas categorical, whole-number floats with few
        distinct values) give a legend whose entries toggle them; other floats give a
        colour bar. The rule and the class colours are those of
        :mod:`tsimcne_widgets.labels`, the same for every widget and the HTML export; its
        :class:`~tsimcne_widgets.labels.Labels` are accepted as they are.
    images : optional
        Anything :func:`tsimcne_widgets.as_images` accepts, or an ``ImageData``; used for
        hover thumbnails, made one at a time on demand.
    metadata : pandas.DataFrame, optional
        One row per point; shown in the tooltip and included in ``selected_dataframe()``.
    point_size, opacity : float, optional
        Default from the number of points.
    title : str, default=""
    colors : list or dict, optional
        One colour per category (hex, CSS name or RGB tuple), or ``{category: colour}``.
    class_names : sequence of str, optional
        Names for integer label codes ``0 .. k-1``.
    max_rate : float, default=20.0
        Most streamed frames per second sent to the browser; ``0`` for no cap. Frames go
        only once the browser has drawn the previous one, so a slower browser sets a lower
        pace by itself (60,000 points on 2 CPU cores with software WebGL: about 10 per second).
    height : int, default=450
        Plot height in pixels.
    axes : bool, default=False
        Draw x and y axes with tick labels in data coordinates; they follow pan and zoom.
        The axes take room from the plot, not from the page: the widget keeps its size.
    mouse_mode : {"pan", "lasso", "box"}, default="pan"
        What a drag does: pan (scroll zooms; Shift+drag draws a freehand lasso), a freehand
        lasso, or a box. In every mode Ctrl+drag (Cmd on a Mac) adds to the selection,
        Alt+drag removes from it, and a double click or Esc clears it. The toolbar's
        buttons set it too.
    placeholder : str, default=""
        Text shown over the plot instead of the points (e.g. "computing…" while an
        embedding is not there yet); cleared by the next frame sent with :meth:`update`.

    Attributes
    ----------
    lasso : list of float
        The last lasso or box drawn, in data coordinates: x0, y0, x1, y1, ... The
        selection it made holds exactly the points inside this polygon.

    Notes
    -----
    While a selection exists, the points outside it are drawn faded, the selected ones
    opaque, larger and in their own colour.
    """

    _esm = _STATIC
    _css = _STYLE
    _xy = t.Bytes(b"").tag(sync=True)
    # Original index (uint32) of each shown point while a run shows a subsample; else empty.
    _orig_index = t.Bytes(b"").tag(sync=True)
    _frame = t.Int(0).tag(sync=True)
    _animate = t.Bool(False).tag(sync=True)
    _labels = t.Bytes(b"").tag(sync=True)
    _label_kind = t.Unicode("none").tag(sync=True)
    _label_dtype = t.Unicode("").tag(sync=True)
    _categories = t.List(t.Unicode()).tag(sync=True)
    _colors = t.List(t.Unicode()).tag(sync=True)
    _value_range = t.List(t.Float(), default_value=[0.0, 1.0]).tag(sync=True)
    _selection = t.Bytes(b"").tag(sync=True, from_json=_bytes_from_json)
    hidden = t.List(t.Int()).tag(sync=True)
    lasso = t.List(t.Float()).tag(sync=True)
    point_size = t.Float(4.0).tag(sync=True)
    opacity = t.Float(0.8).tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    badge = t.Unicode("").tag(sync=True)
    frame_kind = t.Unicode("").tag(sync=True)
    highlight = t.List(t.Int()).tag(sync=True)
    mouse_mode = t.Enum(["pan", "lasso", "box"], "pan").tag(sync=True)
    axes = t.Bool(False).tag(sync=True)
    placeholder = t.Unicode("").tag(sync=True)
    theme = t.Enum(["auto", "light", "dark"], "auto").tag(sync=True)
    height = t.Int(450).tag(sync=True)
    width = t.Int(0).tag(sync=True)

    def __init__(self, xy, labels=None, images=None, metadata=None, *, point_size=None,
                 opacity=None, title="", colors=None, class_names=None, max_rate=20.0,
                 height=450, axes=False, **kwargs):
        xy = sd.check_xy(xy)
        n = len(xy)
        # class_names alone (no labels) is tolerated here: from_run passes a run's.
        lab = sd.check_categories(encode_labels(
            labels, n, None if labels is None else class_names))
        cols = lab.colors(colors)
        meta = sd.check_metadata(metadata, n)
        imgs = _check_images(images, n)
        if max_rate is not None and (not np.isscalar(max_rate) or max_rate < 0):
            raise ValueError(f"max_rate must be a non-negative number, got {max_rate!r}.")
        self._frame_lock = threading.RLock()
        self._labels_obj = lab
        self._metadata = meta
        self._images = imgs
        self._index: np.ndarray | None = None  # displayed point -> original index
        self._positions = xy
        self._select_callbacks: list[Callable] = []
        self._hover_callbacks: list[Callable] = []
        self._rendered = threading.Event()
        super().__init__(
            _xy=sd.xy_to_bytes(xy), _labels=sd.label_bytes(lab), _label_kind=lab.kind,
            _label_dtype=sd.label_dtype(lab), _categories=sd.label_header(lab), _colors=cols,
            _value_range=list(lab.value_range),
            point_size=sd.default_point_size(n) if point_size is None else float(point_size),
            opacity=sd.default_opacity(n) if opacity is None else float(opacity),
            title=title, height=height, axes=_check_bool(axes, "axes"), **kwargs,
        )
        self._throttle = FrameThrottle(self._send_frame, max_rate=max_rate or 0.0)
        self.on_msg(self._on_custom_msg)
        self.observe(self._notify_select, names="_selection")

    # ----------------------------------------------------------------- properties
    @property
    def n_points(self) -> int:
        return len(self._positions)

    @property
    def xy(self) -> np.ndarray:
        """The positions of the last frame given to :meth:`update` (float32, read-only)."""
        out = self._positions.view()
        out.setflags(write=False)
        return out

    @property
    def selection(self) -> np.ndarray:
        """Selected point indices (uint32, sorted); set it to highlight points."""
        return np.frombuffer(self._selection, dtype=np.uint32).copy()

    @selection.setter
    def selection(self, indices) -> None:
        idx = np.unique(np.asarray(indices, dtype=np.int64).reshape(-1))
        if len(idx) and (idx[0] < 0 or idx[-1] >= self.n_points):
            raise ValueError(f"selection indices must be in [0, {self.n_points}), got values "
                             f"in [{idx[0]}, {idx[-1]}].")
        self._selection = idx.astype(np.uint32).tobytes()

    @property
    def max_rate(self) -> float:
        return self._throttle.max_rate

    @max_rate.setter
    def max_rate(self, value: float) -> None:
        self._throttle.max_rate = float(value)

    @property
    def stats(self) -> dict:
        """Counts of submitted, sent, dropped and acknowledged frames."""
        return dict(self._throttle.stats)

    # ----------------------------------------------------------------- streaming
    def update(self, xy, animate: bool = True, *, badge: str | None = None,
               kind: str | None = None) -> bool:
        """Show new positions for the same points; safe to call from any thread.

        `xy` may also be a :class:`~tsimcne_widgets.snapshots.Snapshot`, so
        ``run.on("snapshot", scatter.update)`` works. Frames arriving faster than the browser
        draws (or than ``max_rate``) are dropped, except the newest. Positions with NaN are
        refused with a warning, keeping the last good frame. Returns whether it was accepted.
        """
        snap = xy if hasattr(xy, "xy") and hasattr(xy, "kind") else None
        if snap is not None:
            xy, kind = snap.xy, snap.kind
            badge = f"stage {snap.stage} · epoch {snap.epoch}" if badge is None else badge
            if snap.indices is not None and not _same(snap.indices, self._index):
                self._reindex(np.asarray(snap.indices, dtype=np.int64), snap.xy, badge, kind)
                return True
        arr = np.asarray(xy.detach().cpu().numpy() if hasattr(xy, "detach") else xy)
        if arr.ndim == 2 and arr.shape[1] == 2 and np.issubdtype(arr.dtype, np.number) and (
                not np.isfinite(arr).all()):
            warnings.warn("update: positions contain NaN or infinity; frame refused, the last "
                          "good frame stays on screen.", RuntimeWarning, stacklevel=2)
            return False
        arr = sd.check_xy(arr, "xy", n=self.n_points)
        with self._frame_lock:
            self._positions = arr
        self._throttle.submit((arr, bool(animate), badge, kind))
        return True

    def _send_frame(self, payload, frame: int) -> None:
        arr, animate, badge, kind = payload
        with self._frame_lock, self.hold_sync():  # one message, one render
            self._xy = sd.xy_to_bytes(arr)
            self._animate = animate
            if badge is not None:
                self.badge = badge
            if kind is not None:
                self.frame_kind = kind
            self.placeholder = ""  # points to show now
            self._frame = frame

    def _reindex(self, index, xy, badge, kind) -> None:
        """A run's snapshots cover a subsample: show exactly those points."""
        if self._images is not None and len(index) and index.max() >= len(self._images):
            raise ValueError("snapshot indices exceed the number of images.")
        xy = sd.check_xy(xy, "xy", n=len(index))
        with self._frame_lock:
            self._index, self._positions = index, xy
            frame = self._throttle.next_frame()
            with self.hold_sync():
                self._selection = b""
                self._labels = sd.label_bytes(self._labels_obj, index)
                self._orig_index = index.astype(np.uint32).tobytes()
                self._xy = sd.xy_to_bytes(xy)
                self.point_size = sd.default_point_size(len(index))
                if badge is not None:
                    self.badge = badge
                if kind is not None:
                    self.frame_kind = kind
                self._animate = False
                self.placeholder = ""
                self._frame = frame

    def wait_rendered(self, timeout: float | None = None) -> bool:
        """Block until a browser view of this widget has rendered."""
        return self._rendered.wait(timeout)

    # ----------------------------------------------------------------- selection
    def on_select(self, callback: Callable[[np.ndarray], Any], remove: bool = False) -> Callable:
        """Call ``callback(selection)`` with the uint32 indices whenever the selection
        changes; ``remove=True`` stops calling it. Returns ``callback``."""
        return register(self._select_callbacks, callback, remove=remove)

    def _notify_select(self, change) -> None:
        sel = self.selection
        for cb in list(self._select_callbacks):
            cb(sel)

    def selected_dataframe(self) -> pd.DataFrame:
        """The selected points: columns index, x, y, label and every metadata column."""
        sel = self.selection.astype(np.int64)
        orig = sel if self._index is None else self._index[sel]
        lab_idx = orig
        df = pd.DataFrame({
            "index": orig,
            "x": self._positions[sel, 0].astype(np.float64),
            "y": self._positions[sel, 1].astype(np.float64),
            "label": self._labels_obj.column(lab_idx),
        })
        if self._metadata is not None:
            meta = self._metadata.iloc[orig].reset_index(drop=True)
            df = pd.concat([df, meta], axis=1)
        return df

    # ----------------------------------------------------------------- hover
    def _original(self, i: int) -> int:
        return int(i) if self._index is None else int(self._index[int(i)])

    def tooltip_html(self, i: int) -> str:
        """The tooltip for displayed point `i`; every user string is HTML-escaped."""
        j = self._original(i)
        parts = [f'<div class="tsw-tip-index">#{j}</div>']
        if self._labels_obj.kind != "none":
            parts.append(f'<div class="tsw-tip-label">{html.escape(self._labels_obj.name_of(j))}'
                         "</div>")
        if self._metadata is not None:
            row = self._metadata.iloc[j]
            cells = "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
                for k, v in list(row.items())[:_TIP_COLUMNS]
            )
            parts.append(f"<table>{cells}</table>")
        return "".join(parts)

    def thumbnail(self, i: int, size: int = 64) -> bytes | None:
        """PNG bytes of the image of displayed point `i`, or None without images."""
        if self._images is None:
            return None
        return thumbnail_png(self._images, self._original(i), size)

    def _on_custom_msg(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "ack":
            self._throttle.ack(int(content.get("frame", -1)))
        elif kind == "rendered":
            self._rendered.set()
        elif kind == "hover_out":
            self._notify_hover(None)
        elif kind == "hover":
            i = int(content.get("index", -1))
            if 0 <= i < self.n_points:
                self._notify_hover(self._original(i))
                png = self.thumbnail(i)
                self.send({"type": "tip", "index": i, "html": self.tooltip_html(i),
                           "img": None if png is None else data_url(png)})

    def on_hover(self, callback: Callable[[int | None], Any], remove: bool = False) -> Callable:
        """Call ``callback(index)`` when the pointer enters a point (``None`` on leaving);
        ``remove=True`` stops calling it. Returns ``callback``."""
        return register(self._hover_callbacks, callback, remove=remove)

    def _notify_hover(self, index) -> None:
        for cb in list(self._hover_callbacks):
            cb(index)

    def highlight_points(self, indices) -> None:
        """Mark points (original indices) with the hover reticle, without selecting them."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).ravel()]
        if self._index is not None:  # shown points are a subsample: map to positions
            where = {int(j): k for k, j in enumerate(self._index)}
            idx = [where[i] for i in idx if i in where]
        if any(i < 0 or i >= self.n_points for i in idx):
            raise ValueError(f"indices must be in [0, {self.n_points}), got {idx}.")
        self.highlight = idx

    # ----------------------------------------------------------------- export
    def to_png(self, path, size: int = 800, background: str = "white") -> Path:
        """Render the current frame to a PNG file in Python (no browser needed)."""
        from ._scatter_png import render_png

        path = Path(path)
        path.write_bytes(render_png(self, size=size, background=background))
        return path

    # ----------------------------------------------------------------- runs
    @classmethod
    def from_run(cls, run, labels=None, images=None, **kwargs) -> EmbeddingScatter:
        """A scatter that follows `run`'s snapshots (a ``TrainingRun``).

        Labels and images default to the run's data. Preview frames (stage 1, a PCA of the
        128-D output) are marked as previews.
        """
        data = getattr(run, "data", None)
        n = len(data) if data is not None else None
        if labels is None:
            labels = getattr(run, "labels", None)
            kwargs.setdefault("class_names", getattr(run, "class_names", None))
        if images is None:
            images = data
        snap = getattr(run, "latest", None)
        if snap is not None and snap.indices is None:
            xy = snap.xy
        elif n is not None:
            xy = np.zeros((n, 2), dtype=np.float32)
        else:
            raise ValueError("from_run needs a run with data or at least one snapshot.")
        scatter = cls(xy, labels=labels, images=images, **kwargs)
        if snap is not None:
            scatter.update(snap, animate=False)
        run.on("snapshot", scatter.update)
        return scatter


def _check_images(images, n):
    if images is None:
        return None
    from .data import ImageData, as_images

    data = images if isinstance(images, ImageData) else as_images(images)
    if len(data) != n:
        raise ValueError(f"images must have one image per point ({n}), got {len(data)}.")
    return data


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and bool(np.array_equal(a, b))


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return str(v)
