"""One rule for what a label is and one palette, shared by ImageData, the scatter, the
comparison and the HTML export: the same labels give the same classes and colours in all."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from tsimcne_widgets.comparison import MethodComparison
from tsimcne_widgets.data import as_images
from tsimcne_widgets.export_html import save_html
from tsimcne_widgets.labels import (
    MAX_FLOAT_CLASSES,
    TAB10,
    TAB20,
    encode_labels,
    palette,
    viridis_rgb,
)
from tsimcne_widgets.scatter import EmbeddingScatter

N = 60
RNG = np.random.default_rng(0)
PICK = RNG.integers(0, 3, N)
PICK12 = np.arange(N) % 12


def _cases():
    """(name, labels, expected class names, expected code of every point)."""
    cat = pd.Categorical(np.array(["b", "a", "z"])[PICK], categories=["z", "b", "a", "unused"])
    return [
        ("ints", np.array([11, 3, 7])[PICK], ("3", "7", "11"), np.array([2, 0, 1])[PICK]),
        ("strings", np.array(["dog", "cat", "emu"])[PICK], ("cat", "dog", "emu"),
         np.array([1, 0, 2])[PICK]),
        ("whole floats", np.array([4.0, 0.0, 2.0])[PICK], ("0", "2", "4"),
         np.array([2, 0, 1])[PICK]),
        ("categorical", cat, ("z", "b", "a", "unused"), np.array([1, 2, 0])[PICK]),
        ("series", pd.Series(np.array(["x", "y", "w"])[PICK], name="kind"), ("w", "x", "y"),
         np.array([1, 2, 0])[PICK]),
        ("12 ints", PICK12 * 10, tuple(str(10 * k) for k in range(12)), PICK12),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


def _scatter_view(w):
    """Class names and per-point colours exactly as the widget sends them."""
    dtype = np.uint8 if w._label_dtype == "uint8" else np.uint16
    codes = np.frombuffer(w._labels, dtype=dtype)
    return tuple(w._categories), list(np.asarray(w._colors)[codes])


def _html_view(path):
    """Class names (legend order) and per-point colours from the bokeh JSON of the file."""
    text = path.read_text(encoding="utf-8")
    docs = [json.loads(m) for m in re.findall(
        r'<script type="application/json" id="[^"]*">\s*(.*?)\s*</script>', text, re.S)]
    found = {}

    def walk(o):
        if isinstance(o, dict):
            # A model is {"type": "object", "name": <class>, "attributes": {"name": ...}}.
            if o.get("type") != "object" and o.get("name") in ("points", "legend"):
                found.setdefault(o["name"], o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(docs)
    cols = dict(found["points"]["data"]["entries"])
    legend = found.get("legend")
    names = ()
    if legend is not None:
        names = tuple(it["attributes"]["label"]["value"] for it in legend["items"])
    return names, cols["label"], cols["color"]


def _expected_colors(names, codes):
    pal = TAB10 if len(names) <= 10 else TAB20
    return [pal[c] for c in codes]


@pytest.mark.filterwarnings("ignore:knn_accuracy:UserWarning")  # 12 classes, 60 points
@pytest.mark.parametrize(("name", "labels", "names", "codes"), CASES, ids=IDS)
def test_same_classes_and_colours_everywhere(name, labels, names, codes, tmp_path):
    colors = _expected_colors(names, codes)
    xy = RNG.normal(size=(N, 2)).astype(np.float32)
    images = RNG.integers(0, 255, size=(N, 4, 4), dtype=np.uint8)

    data = as_images(images, labels)  # ImageData
    assert data.class_names == names
    np.testing.assert_array_equal(data.labels, codes)

    views = {
        "scatter": _scatter_view(EmbeddingScatter(xy, labels=labels)),
        "scatter from ImageData": _scatter_view(EmbeddingScatter(
            xy, labels=data.labels, class_names=data.class_names)),
    }
    comp = MethodComparison({"a": xy, "b": xy[::-1].copy()}, labels=labels)
    comp_from_data = MethodComparison({"a": xy}, images=data)
    for key, panel in comp.panels.items():
        views[f"comparison {key}"] = _scatter_view(panel)
    views["comparison from ImageData"] = _scatter_view(comp_from_data.panels["a"])
    for where, view in views.items():
        assert view == (names, colors), where

    html_paths = [save_html(tmp_path / "direct.html", {"a": xy}, labels=labels),
                  comp.save_html(tmp_path / "comparison.html")]
    for path in html_paths:
        legend, text, html_colors = _html_view(path)
        assert legend == names, path.name
        assert html_colors == colors, path.name
        assert text == [names[c] for c in codes], path.name
    comp.wait(30)
    comp_from_data.wait(30)


# --- the rule -----------------------------------------------------------------------------------


def test_the_rule_what_is_a_class():
    assert encode_labels(np.array([True, False, True]), 3).names == ("False", "True")
    assert encode_labels([2, 1, 2], 3).kind == "categorical"
    assert encode_labels(np.array([1, "a"], dtype=object), 2, ["1", "a"]).kind == "categorical"
    # Whole-number floats are classes up to MAX_FLOAT_CLASSES distinct values.
    few = np.arange(MAX_FLOAT_CLASSES, dtype=float)
    assert encode_labels(few, len(few)).kind == "categorical"
    many = np.arange(MAX_FLOAT_CLASSES + 1, dtype=float)
    assert encode_labels(many, len(many)).kind == "continuous"
    cont = encode_labels(pd.Series([0.5, 1.5, -1.0], name="age"), 3)
    assert (cont.kind, cont.title, cont.value_range) == ("continuous", "age", (-1.0, 1.5))
    # An object column of numbers is numbers, not strings: 3.0 is "3", as for the int 3.
    assert encode_labels(np.array([3.0, 5.0], dtype=object), 2).names == ("3", "5")
    # With class_names, whole-number floats are the codes themselves.
    lab = encode_labels(np.array([1.0, 0.0]), 2, ["a", "b"])
    assert lab.names == ("a", "b") and lab.values.tolist() == [1, 0]


def test_the_rule_refuses_bad_labels():
    with pytest.raises(TypeError, match="all be ints or all be strings"):
        encode_labels(np.array([1, "a"], dtype=object), 2)
    with pytest.raises(ValueError, match="1 missing values"):
        encode_labels([0.0, np.nan, 1.0], 3)
    with pytest.raises(ValueError, match="finite"):
        encode_labels([0.5, np.inf], 2)
    with pytest.raises(ValueError, match="not whole numbers"):
        encode_labels([0.5, 1.0], 2, ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) to match the 3 points"):
        encode_labels([0, 1], 3)


def test_continuous_labels_colour_bar_in_the_widget_refused_by_images(tmp_path):
    vals = np.linspace(-1.0, 2.0, N)
    xy = RNG.normal(size=(N, 2))
    w = EmbeddingScatter(xy, labels=vals)
    assert w._label_kind == "continuous" and w._value_range == [-1.0, 2.0]
    with pytest.raises(TypeError, match="continuous"):
        as_images(np.zeros((N, 4, 4), np.uint8), vals)
    path = save_html(tmp_path / "cont.html", {"a": xy}, labels=vals)
    _, text, colors = _html_view(path)
    rgb = viridis_rgb(vals, -1.0, 2.0)
    assert colors == ["#{:02x}{:02x}{:02x}".format(*c) for c in rgb.tolist()]
    assert colors[0] == "#440154" and colors[-1] == "#fde725"  # viridis' ends
    assert text[0] == "-1" and text[-1] == "2"
    assert '"name":"colorbar"' in path.read_text().replace(" ", "")


def test_palette_rule_beyond_twenty_classes():
    assert palette(list("abc")) == list(TAB10[:3])
    assert palette([str(i) for i in range(11)]) == list(TAB20[:11])
    big = palette([str(i) for i in range(40)])
    assert len(set(big)) == 40 and big == palette([str(i) for i in range(40)])
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in big)


def test_dataframe_labels_keep_their_natural_type():
    from tsimcne_widgets import load_digits

    digits = load_digits()
    w = EmbeddingScatter(np.zeros((digits.n_samples, 2), np.float32), labels=digits.labels,
                         class_names=digits.class_names)
    w.selection = [3]
    value = w.selected_dataframe()["label"].iloc[0]
    assert value == digits.labels[3] and isinstance(value, np.integer | int)
    w = EmbeddingScatter(np.zeros((3, 2), np.float32), labels=["b", "a", "b"])
    w.selection = [0]
    assert w.selected_dataframe()["label"].iloc[0] == "b"
    cat = pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"])
    w = EmbeddingScatter(np.zeros((3, 2), np.float32), labels=cat)
    w.selection = [0, 1]
    col = w.selected_dataframe()["label"]
    assert list(col.cat.categories) == ["y", "x", "z"] and list(col) == ["x", "y"]
