"""Input checking and binary encoding for :class:`~tsimcne_widgets.scatter.EmbeddingScatter`.

Positions become float32 bytes interleaved as x0, y0, x1, y1, ... (the row-major layout of
an ``(n, 2)`` array, so no re-layout on either side), labels become uint8/uint16 category
codes plus the category names (sent once) or float32 values for a colour bar. What a label
is, and which colour a class gets, is decided in :mod:`tsimcne_widgets.labels`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .labels import Labels

# Category codes travel as uint16 at most.
MAX_CATEGORIES = 65535


def check_xy(xy: Any, name: str = "xy", n: int | None = None) -> np.ndarray:
    """Return `xy` as a C-contiguous float32 ``(n_points, 2)`` array, or raise ValueError."""
    if hasattr(xy, "detach"):  # torch tensor
        xy = xy.detach().cpu().numpy()
    try:
        arr = np.asarray(xy)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of shape (n_points, 2): {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
    want = "(n_points, 2)" if n is None else f"({n}, 2)"
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0 or (
            n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} rows with NaN or infinite positions "
            f"(first at index {int(np.flatnonzero(bad)[0])}); all positions must be finite."
        )
    return arr


def xy_to_bytes(xy: np.ndarray) -> bytes:
    """float32 bytes interleaved as x0, y0, x1, y1, ... (`xy` is C-contiguous already)."""
    return np.ascontiguousarray(xy, dtype=np.float32).tobytes()


def xy_from_bytes(data: bytes) -> np.ndarray:
    """Inverse of :func:`xy_to_bytes`: an ``(n, 2)`` float32 array."""
    return np.frombuffer(data, dtype=np.float32).reshape(-1, 2).copy()


def check_categories(labels: Labels) -> Labels:
    """`labels`, if its classes fit the uint16 codes on the wire; else ValueError."""
    if labels.kind == "categorical" and labels.n_classes > MAX_CATEGORIES:
        raise ValueError(f"labels have {labels.n_classes} categories; at most "
                         f"{MAX_CATEGORIES} are supported. Pass float labels for a colour "
                         "bar instead.")
    return labels


def label_dtype(labels: Labels) -> str:
    """The wire dtype of the labels: uint8/uint16 codes, float32 values or none."""
    if labels.kind == "categorical":
        return "uint8" if labels.n_classes <= 256 else "uint16"
    return "float32" if labels.kind == "continuous" else ""


def label_bytes(labels: Labels, index: np.ndarray | None = None) -> bytes:
    """The label bytes of the points ``index`` (all points when None)."""
    if labels.values is None:
        return b""
    v = labels.values if index is None else labels.values[index]
    return np.ascontiguousarray(v, dtype=label_dtype(labels)).tobytes()


def label_header(labels: Labels) -> list[str]:
    """The ``_categories`` trait: the class names, or the colour bar's title if any."""
    if labels.kind == "continuous":
        return [labels.title] if labels.title else []
    return list(labels.names)


def default_point_size(n: int) -> float:
    """About 8 px for 1,000 points, 2.5 px for 100,000 and 1.4 px for 1,000,000."""
    return float(np.clip(2.5 * (100_000 / max(n, 1)) ** 0.25, 1.0, 8.0))


def default_opacity(n: int) -> float:
    """Opaque for small sets; lighter for dense ones so that overlap stays readable."""
    return float(np.clip(0.9 * (10_000 / max(n, 1)) ** 0.2, 0.3, 0.9))


def check_metadata(metadata: Any, n: int) -> pd.DataFrame | None:
    if metadata is None:
        return None
    if isinstance(metadata, Mapping):
        metadata = pd.DataFrame(metadata)
    if not isinstance(metadata, pd.DataFrame):
        raise ValueError(f"metadata must be a pandas DataFrame, got {type(metadata).__name__}.")
    if len(metadata) != n:
        raise ValueError(f"metadata must have one row per point ({n}), got {len(metadata)}.")
    clash = {"index", "x", "y", "label"} & set(map(str, metadata.columns))
    if clash:
        raise ValueError(f"metadata columns {sorted(clash)} clash with the columns index, x, y, "
                         "label of selected_dataframe(); rename them.")
    return metadata.reset_index(drop=True)
