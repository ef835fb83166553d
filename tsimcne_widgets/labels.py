"""Labels and their colours: the one place that decides what a label is and how it looks.

:class:`~tsimcne_widgets.data.ImageData`, :class:`~tsimcne_widgets.scatter.EmbeddingScatter`,
:class:`~tsimcne_widgets.comparison.MethodComparison` and
:func:`~tsimcne_widgets.export_html.save_html` all encode labels with :func:`encode_labels`
and colour classes with :func:`palette`, so the same labels give the same classes and the
same colours in every widget and in the exported HTML.

The rule
--------
Classes (a legend):
    ints, bools, strings, pandas categoricals, and floats that are all whole numbers with
    at most :data:`MAX_FLOAT_CLASSES` distinct values (e.g. an int column that went
    through a float because it had gaps).
Continuous (a colour bar):
    every other float array.
Class names:
    a categorical keeps its categories, in their order, unused ones included; otherwise
    the classes are the sorted unique labels, named by their string form (whole-number
    floats as ints: 3.0 is "3", like the int 3). With `class_names`, int and whole-number
    float labels are the codes themselves and string labels are looked up in it.
Colours:
    class ``k`` of ``K`` gets ``TAB10[k]`` for ``K <= 10``, ``TAB20[k]`` for
    ``K <= 20`` and, beyond, hue ``k * golden ratio`` (mod 1) at fixed lightness and
    saturation, so that neighbouring codes differ and no colour repeats. Continuous values
    map linearly from their range onto viridis.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Labels", "encode_labels", "palette", "to_hex", "viridis_rgb"]

# matplotlib's tab10 / tab20, the palettes users know from every other scatter plot.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TAB20 = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
         "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
         "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")
# Colour of every point when there are no labels.
DEFAULT_COLOR = TAB10[0]
# Whole-number floats with more distinct values than this are a measurement, not classes.
MAX_FLOAT_CLASSES = 64
# viridis at 10 stops; js/scatter/colors.js interpolates the same stops.
VIRIDIS_STOPS = np.array([[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142],
                          [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89],
                          [180, 222, 44], [253, 231, 37]], dtype=np.float64)
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


@dataclass(frozen=True, eq=False)
class Labels:
    """Encoded labels.

    Parameters
    ----------
    kind : {"none", "categorical", "continuous"}
    values : numpy.ndarray or None
        int64 codes into `names` (categorical) or float32 values (continuous).
    names : tuple of str
        The class names; empty unless categorical.
    title : str
        The name of a pandas Series the labels came from (a colour bar's title).
    value_range : (float, float)
        Smallest and largest value (continuous).
    classes : tuple
        The label value of each class in its natural type (ints for int labels and
        codes, strings for strings, a categorical's categories), as DataFrame columns
        hold them; the names are for display. Empty means the names.
    """

    kind: str
    values: np.ndarray | None
    names: tuple[str, ...] = ()
    title: str = ""
    value_range: tuple[float, float] = (0.0, 1.0)
    classes: tuple = ()

    def __len__(self) -> int:
        return 0 if self.values is None else len(self.values)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 unless categorical)."""
        return len(self.names)

    def colors(self, colors: Any = None) -> list[str]:
        """One hex colour per class: :func:`palette` of the names."""
        return palette(self.names, colors) if self.kind == "categorical" else []

    def point_colors(self, colors: Any = None) -> list[str]:
        """The hex colour of every point, as every widget and the HTML export draw it
        (empty without labels)."""
        if self.kind == "categorical":
            return list(np.asarray(self.colors(colors))[self.values])
        if self.kind == "continuous":
            rgb = viridis_rgb(self.values, *self.value_range)
            return ["#{:02x}{:02x}{:02x}".format(*c) for c in rgb.tolist()]
        return []

    def name_of(self, i: int) -> str:
        """The text shown for point `i`: its class name or its formatted value."""
        if self.kind == "categorical":
            return self.names[int(self.values[i])]
        if self.kind == "continuous":
            return f"{float(self.values[i]):.4g}"
        return ""

    def text(self) -> list[str]:
        """:meth:`name_of` for every point."""
        if self.kind == "categorical":
            return list(np.asarray(self.names, dtype=object)[self.values])
        return [self.name_of(i) for i in range(len(self))]

    def column(self, index: np.ndarray) -> Any:
        """Label values of the points `index`, for a DataFrame column."""
        if self.kind == "categorical":
            return pd.Categorical.from_codes(self.values[index],
                                             categories=list(self.classes or self.names))
        if self.kind == "continuous":
            return self.values[index].astype(np.float64)
        return np.full(len(index), None, dtype=object)


NO_LABELS = Labels("none", None)


def encode_labels(labels: Any, n: int, class_names: Sequence[str] | None = None, *,
                  noun: str = "points") -> Labels:
    """Encode labels by the rule of this module.

    Parameters
    ----------
    labels : array-like of shape (n,), pandas Categorical or Series, torch tensor, Labels or None
        The labels; an already encoded :class:`Labels` is returned as is.
    n : int
        Number of points (or images) the labels belong to.
    class_names : sequence of str, optional
        Names of the classes; see the module's rule.
    noun : str, default="points"
        What the labels label, for error messages ("images", "points").

    Returns
    -------
    Labels

    Raises
    ------
    ValueError
        Wrong length, missing values, codes outside `class_names`, infinite values.
    TypeError
        Unsupported dtype, or a mix of numbers and strings.
    """
    if isinstance(labels, Labels):
        if labels.kind != "none" and len(labels) != n:
            raise ValueError(f"labels must have shape ({n},) to match the {n} {noun}, got "
                             f"shape ({len(labels)},).")
        return labels
    names = check_class_names(class_names)
    if labels is None:
        if names is not None:
            raise ValueError("class_names were given without labels.")
        return NO_LABELS
    title = ""
    if isinstance(labels, pd.Series | pd.Index):
        title = "" if labels.name is None else str(labels.name)
    if isinstance(getattr(labels, "dtype", None), pd.CategoricalDtype) and names is None:
        cat = pd.Categorical(labels)  # keeps the category order and unused categories
        codes = np.asarray(cat.codes, dtype=np.int64)
        _check_shape(codes, n, noun)
        _check_missing(codes < 0)
        return Labels("categorical", codes, tuple(str(c) for c in cat.categories), title,
                      classes=tuple(_natural(c) for c in cat.categories))
    if hasattr(labels, "detach"):  # torch tensor
        labels = labels.detach().cpu().numpy()
    values = _infer(np.asarray(labels))
    _check_shape(values, n, noun)
    kind = values.dtype.kind
    if kind not in "biufUSO":
        raise TypeError(f"labels must be ints, strings, bools or floats, got dtype "
                        f"{values.dtype}.")
    _check_missing(pd.isna(values))
    if kind == "f":
        if not np.isfinite(values).all():
            raise ValueError("labels must be finite: a colour bar cannot show infinity.")
        whole = bool(np.array_equal(values, np.round(values)))
        if names is None and not (whole and len(np.unique(values)) <= MAX_FLOAT_CLASSES):
            vals = values.astype(np.float32)
            return Labels("continuous", vals, (), title,
                          (float(vals.min()), float(vals.max())))
        if not whole:
            raise ValueError("labels with class_names must be class codes, got floats that "
                             "are not whole numbers.")
        values, kind = values.astype(np.int64), "i"
    if names is not None:
        if kind in "biu":
            codes = values.astype(np.int64)
            if codes.min() < 0 or codes.max() >= len(names):
                raise ValueError(
                    f"Integer labels must be codes in [0, {len(names)}) for the {len(names)} "
                    f"class_names, got values in [{codes.min()}, {codes.max()}]."
                )
            return Labels("categorical", codes, names, title,
                          classes=tuple(range(len(names))))
        return Labels("categorical", _lookup(values.astype(str), names), names, title)
    try:
        uniques, codes = np.unique(values, return_inverse=True)
    except TypeError as exc:
        raise TypeError("labels must all be ints or all be strings, got a mix.") from exc
    return Labels("categorical", codes.astype(np.int64).reshape(-1),
                  tuple(str(u) for u in uniques), title,
                  classes=tuple(_natural(u) for u in uniques))


def _natural(value: Any) -> Any:
    """A numpy scalar as the plain Python value (np.int64(3) -> 3)."""
    return value.item() if isinstance(value, np.generic) else value


def check_class_names(class_names: Any) -> tuple[str, ...] | None:
    """`class_names` as a tuple of unique, non-empty str, or None."""
    if class_names is None:
        return None
    if isinstance(class_names, str) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"class_names must be a sequence of str, got "
                        f"{type(class_names).__name__}.")
    names = tuple(str(c) for c in class_names)
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {list(names)}.")
    if not names:
        raise ValueError("class_names must not be empty.")
    return names


def _infer(values: np.ndarray) -> np.ndarray:
    """Object arrays of numbers, bools or strings as a proper dtype; a mix stays object."""
    if values.dtype != object or values.ndim != 1:
        return values
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if pd.isna(values).any():
        return values  # _check_missing reports it
    if inferred == "integer":
        return values.astype(np.int64)
    if inferred in ("floating", "mixed-integer-float"):
        return values.astype(np.float64)
    if inferred == "boolean":
        return values.astype(bool)
    return values


def _check_shape(values: np.ndarray, n: int, noun: str) -> None:
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"labels must have shape ({n},) to match the {n} {noun}, got shape "
                         f"{values.shape}.")


def _check_missing(missing: np.ndarray) -> None:
    if missing.any():
        raise ValueError(
            f"labels contain {int(missing.sum())} missing values (NaN or None), "
            f"first at index {int(np.argmax(missing))}."
        )


def _lookup(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Codes of string labels in `names` (vectorised via searchsorted)."""
    table = np.asarray(names)
    order = np.argsort(table)
    pos = np.searchsorted(table, values, sorter=order).clip(max=len(table) - 1)
    codes = order[pos]
    unknown = table[codes] != values
    if unknown.any():
        raise ValueError(
            f"labels contain {str(values[unknown][0])!r}, which is not in "
            f"class_names {list(names)}."
        )
    return codes.astype(np.int64)


# --- colours -------------------------------------------------------------------------------------


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
    """One hex colour per class.

    Parameters
    ----------
    names : sequence of str
        The class names, in code order.
    colors : str, sequence or mapping, optional
        One colour for all, one per class, or ``{name: colour}`` for some classes (the
        others keep their default). Without it, the module's rule: TAB10, TAB20, then
        golden-ratio hues.

    Returns
    -------
    list of str
        At least one colour (the default colour when `names` is empty).
    """
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


def viridis_rgb(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(n, 3) uint8 viridis colours of `values` mapped linearly from ``[lo, hi]``."""
    stops = VIRIDIS_STOPS
    v = np.clip((np.asarray(values, np.float64) - lo) / ((hi - lo) or 1.0), 0, 1)
    v = v * (len(stops) - 1)
    k = np.minimum(v.astype(int), len(stops) - 2)
    f = (v - k)[:, None]
    return (stops[k] * (1 - f) + stops[k + 1] * f).round().astype(np.uint8)


def viridis_hex(n: int = 256) -> list[str]:
    """`n` evenly spaced viridis colours as hex (a colour bar's palette)."""
    rgb = viridis_rgb(np.linspace(0.0, 1.0, n), 0.0, 1.0)
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in rgb.tolist()]
