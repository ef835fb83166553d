"""One registration style for every ``on_*`` method: validate, register once, return the
callback, and remove it with ``remove=True`` (widgets) or ``off`` (runs)."""

import numpy as np
import pytest

from tsimcne_widgets.gallery import SelectionGallery
from tsimcne_widgets.scatter import EmbeddingScatter


@pytest.fixture
def scatter():
    xy = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    w = EmbeddingScatter(xy)
    w.send = lambda content, buffers=None: None  # no front end
    return w


def test_scatter_on_select_returns_registers_once_and_removes(scatter):
    got, other = [], []
    assert scatter.on_select(got.append) == got.append
    scatter.on_select(got.append)  # a second registration changes nothing
    scatter.on_select(other.append)
    scatter.selection = [3, 1]
    assert [s.tolist() for s in got] == [[1, 3]] and len(other) == 1
    assert scatter.on_select(got.append, remove=True) == got.append
    scatter.on_select(print, remove=True)  # never registered: nothing happens
    scatter.selection = [4]
    assert len(got) == 1 and [s.tolist() for s in other] == [[1, 3], [4]]
    with pytest.raises(TypeError, match="callable"):
        scatter.on_select("not a function")


def test_scatter_on_hover_validates_returns_and_removes(scatter):
    got = []
    with pytest.raises(TypeError, match="callable"):
        scatter.on_hover(None)
    assert scatter.on_hover(got.append) == got.append
    scatter.on_hover(got.append)
    scatter._on_custom_msg(scatter, {"type": "hover", "index": 7}, [])
    scatter._on_custom_msg(scatter, {"type": "hover_out"}, [])
    assert got == [7, None]
    scatter.on_hover(got.append, remove=True)
    scatter._on_custom_msg(scatter, {"type": "hover", "index": 8}, [])
    assert got == [7, None]


def test_gallery_on_click_validates_returns_and_removes(small_digits):
    X, y = small_digits
    g = SelectionGallery(X, labels=y)
    g.show(np.arange(5))
    got = []
    with pytest.raises(TypeError, match="callable"):
        g.on_click(42)
    assert g.on_click(got.append) == got.append
    g.on_click(got.append)
    g.clicked = [2]
    assert got == [2]
    g.on_click(got.append, remove=True)
    g.clicked = [3]
    assert got == [2]
