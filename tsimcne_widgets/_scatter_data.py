"""Input checking and binary encoding for :class:`~tsimcne_widgets.scatter.EmbeddingScatter`.

Everything here is pure numpy: positions become float32 bytes (all x, then all y), labels
become uint8/uint16 category codes plus the category names (sent once), or float32 values
for a colour bar, and colours are checked and normalised to ``#rrggbb`` hex.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# matplotlib's tab10 / tab20, the palettes users know from every other scatter plot.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
         "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
         "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
CSS_COLORS = {
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#008000",
    "blue": "#0000ff", "yellow": "#ffff00", "orange": "#ffa500", "purple": "#800080",
    "pink": "#ffc0cb", "brown": "#a52a2a", "gray": "#808080", "grey": "#808080",
    "cyan": "#00ffff", "magenta": "#ff00ff", "lime": "#00ff00", "navy": "#000080",
    "teal": "#008080", "olive": "#808000", "maroon": "#800000", "silver": "#c0c0c0",
    "gold": "#ffd700", "indigo": "#4b0082", "violet": "#ee82ee", "turquoise": "#40e0d0",
    "salmon": "#fa8072", "crimson": "#dc143c", "darkgray": "#a9a9a9", "lightgray": "#d3d3d3",
    "steelblue": "#4682b4", "tomato": "#ff6347", "coral": "#ff7f50", "khaki": "#f0e68c",
}
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
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
    """float32 bytes laid out as all x values followed by all y values."""
    return np.ascontiguousarray(xy.T, dtype=np.float32).tobytes()


def xy_from_bytes(data: bytes) -> np.ndarray:
    """Inverse of :func:`xy_to_bytes`."""
    cols = np.frombuffer(data, dtype=np.float32)
    return cols.reshape(2, -1).T.copy()


@dataclass(frozen=True)
class Labels:
    """Labels in the form the widget sends.

    kind is 'none', 'categorical' (``values`` are int codes into ``names``) or
    'continuous' (``values`` are float32, ``names`` holds at most the colour bar title).
    """

    kind: str
    values: np.ndarray | None
    names: tuple[str, ...] = ()
    value_range: tuple[float, float] = (0.0, 1.0)

    @property
    def dtype(self) -> str:
        if self.kind == "categorical":
            return "uint8" if len(self.names) <= 256 else "uint16"
        return "float32" if self.kind == "continuous" else ""

    def encode(self, index: np.ndarray | None = None) -> bytes:
        """The bytes for the points ``index`` (all points when None)."""
        if self.values is None:
            return b""
        v = self.values if index is None else self.values[index]
        return np.ascontiguousarray(v, dtype=self.dtype).tobytes()

    def name_of(self, i: int) -> str:
        if self.kind == "categorical":
            return self.names[int(self.values[i])]
        if self.kind == "continuous":
            return f"{float(self.values[i]):.4g}"
        return ""

    def column(self, index: np.ndarray) -> Any:
        """Per-point label values for a DataFrame column."""
        if self.kind == "categorical":
            return pd.Categorical.from_codes(self.values[index], categories=list(self.names))
        if self.kind == "continuous":
            return self.values[index].astype(np.float64)
        return np.full(len(index), None, dtype=object)


def check_labels(labels: Any, n: int, class_names: Sequence[str] | None = None) -> Labels:
    """Categorical (ints, strings, bools, pandas categoricals) or continuous (floats) labels."""
    if labels is None:
        return Labels("none", None)
    title = ""
    if isinstance(labels, pd.Series):
        title = "" if labels.name is None else str(labels.name)
        if isinstance(labels.dtype, pd.CategoricalDtype):
            cat = labels.cat
            names = tuple(str(c) for c in cat.categories)
            codes = cat.codes.to_numpy()
            if (codes < 0).any():
                raise ValueError("labels must not contain missing values.")
            return _categorical(codes, names, n)
        labels = labels.to_numpy()
    if isinstance(labels, pd.Categorical):
        return _categorical(np.asarray(labels.codes), tuple(map(str, labels.categories)), n)
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}.")
    if len(arr) != n:
        raise ValueError(f"labels must have one entry per point ({n}), got {len(arr)}.")
    if np.issubdtype(arr.dtype, np.floating):
        vals = arr.astype(np.float32)
        if not np.isfinite(vals).all():
            raise ValueError("continuous labels must be finite (no NaN or infinity).")
        lo, hi = float(vals.min()), float(vals.max())
        return Labels("continuous", vals, (title,) if title else (), (lo, hi))
    if arr.dtype == object or arr.dtype.kind in "USb":
        try:
            uniq, codes = np.unique(arr.astype(str) if arr.dtype == object else arr,
                                    return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"labels could not be sorted into categories: {exc}") from None
        return _categorical(codes, tuple(str(u) for u in uniq), n)
    if np.issubdtype(arr.dtype, np.integer):
        if class_names is not None:
            names = tuple(str(c) for c in class_names)
            if arr.min() < 0 or arr.max() >= len(names):
                raise ValueError(
                    f"labels must be codes in [0, {len(names)}) to match class_names, got "
                    f"values in [{arr.min()}, {arr.max()}]."
                )
            return _categorical(arr, names, n)
        uniq, codes = np.unique(arr, return_inverse=True)
        return _categorical(codes, tuple(str(u) for u in uniq), n)
    raise ValueError(f"labels must be integers, strings or floats, got dtype {arr.dtype}.")


def _categorical(codes: np.ndarray, names: tuple[str, ...], n: int) -> Labels:
    if len(codes) != n:
        raise ValueError(f"labels must have one entry per point ({n}), got {len(codes)}.")
    if len(names) > MAX_CATEGORIES:
        raise ValueError(f"labels have {len(names)} categories; at most {MAX_CATEGORIES} "
                         "are supported. Pass float labels for a colour bar instead.")
    return Labels("categorical", np.asarray(codes, dtype=np.int64).reshape(-1), names)


def to_hex(color: Any, name: str = "colors") -> str:
    """'#rrggbb' (or '#rrggbbaa') for a hex string, a CSS colour name or an RGB(A) tuple."""
    if isinstance(color, str):
        c = color.strip().lower()
        if c in CSS_COLORS:
            return CSS_COLORS[c]
        if _HEX.match(c):
            if len(c) == 4:
                c = "#" + "".join(ch * 2 for ch in c[1:])
            return c
    elif isinstance(color, Sequence) and len(color) in (3, 4):
        try:
            vals = [float(v) for v in color]
        except (TypeError, ValueError):
            vals = None
        if vals is not None and all(0.0 <= v <= 1.0 for v in vals):
            return "#" + "".join(f"{round(v * 255):02x}" for v in vals)
    raise ValueError(
        f"{name}: unknown colour {color!r}; use '#rrggbb' hex, a CSS colour name such as "
        "'steelblue', or an (r, g, b) tuple with values in [0, 1]."
    )


def palette(names: Sequence[str], colors: Any = None) -> list[str]:
    """One hex colour per category, from `colors` (list or {name: colour}) or a default."""
    k = len(names)
    if colors is None:
        if k <= 10:
            return list(TAB10[:max(k, 1)])
        if k <= 20:
            return list(TAB20[:k])
        return [_golden(i) for i in range(k)]
    if isinstance(colors, Mapping):
        unknown = set(map(str, colors)) - set(names)
        if unknown:
            raise ValueError(f"colors names categories that are not in labels: "
                             f"{sorted(unknown)[:5]}; categories are {list(names)[:10]}.")
        base = palette(names)
        lookup = {str(key): val for key, val in colors.items()}
        return [to_hex(lookup[nm]) if nm in lookup else base[i] for i, nm in enumerate(names)]
    if isinstance(colors, str):
        return [to_hex(colors)] * max(k, 1)
    colors = list(colors)
    if len(colors) < k:
        raise ValueError(f"colors has {len(colors)} entries but labels have {k} categories.")
    return [to_hex(c) for c in colors[:max(k, 1)]]


def _golden(i: int) -> str:
    r, g, b = colorsys.hls_to_rgb((i * 0.618033988749895) % 1.0, 0.5, 0.65)
    return "#" + "".join(f"{round(v * 255):02x}" for v in (r, g, b))


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
