"""SelectionGallery: thumbnails of the selected images with their labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

from ._callbacks import register
from ._thumbs import data_url, thumbnail_png
from .data import as_images

__all__ = ["SelectionGallery"]


class SelectionGallery(anywidget.AnyWidget):
    """Show the first ``max_items`` selected images, the total count and each label.

    Parameters
    ----------
    images : anything :func:`tsimcne_widgets.as_images` accepts
    labels : array-like, optional
        Shown under each thumbnail (class names when ``images`` carries them).
    max_items : int, default=100
    thumb_size : int, default=48
        Thumbnail edge in pixels.

    Notes
    -----
    ``link(scatter)`` follows a scatter's selection, and a click on a thumbnail
    highlights that point in the scatter.
    """

    _esm = Path(__file__).parent / "static" / "gallery.js"
    items = t.List(t.Dict()).tag(sync=True)
    total = t.Int(0).tag(sync=True)
    thumb_size = t.Int(48).tag(sync=True)
    clicked = t.List(t.Int()).tag(sync=True)

    def __init__(self, images, labels=None, *, max_items=100, thumb_size=48, **kwargs):
        super().__init__(thumb_size=thumb_size, **kwargs)
        self._data = as_images(images, labels=labels)
        self.max_items = max_items
        self.indices = np.zeros(0, dtype=np.int64)
        self._click_callbacks: list[Callable[[int], object]] = []
        self.observe(self._on_click, names="clicked")

    def _label(self, i: int) -> str:
        d = self._data
        if d.labels is None:
            return str(i)
        code = int(d.labels[i])
        return d.class_names[code] if d.class_names else str(code)

    def show(self, indices) -> None:
        """Show the images at ``indices`` (the first ``max_items`` of them)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self._data.n_samples):
            raise ValueError(
                f"indices must be in [0, {self._data.n_samples}), got values from "
                f"{idx.min()} to {idx.max()}."
            )
        self.indices = idx
        items = [
            {"index": int(i), "label": self._label(int(i)),
             "src": data_url(thumbnail_png(self._data, int(i), self.thumb_size))}
            for i in idx[: self.max_items]
        ]
        with self.hold_sync():
            self.items = items
            self.total = int(idx.size)

    def on_click(self, callback: Callable[[int], object], remove: bool = False) -> Callable:
        """Call ``callback(index)`` when a thumbnail is clicked; ``remove=True`` stops
        calling it. Returns ``callback``."""
        return register(self._click_callbacks, callback, remove=remove)

    def _on_click(self, change) -> None:
        if change["new"]:
            for cb in list(self._click_callbacks):
                cb(int(change["new"][0]))

    def link(self, scatter) -> SelectionGallery:
        """Follow ``scatter``'s selection; clicks highlight the point in ``scatter``."""
        scatter.on_select(lambda sel: self.show(sel))
        self.on_click(lambda i: scatter.highlight_points([i]))
        self.show(scatter.selection)
        return self
