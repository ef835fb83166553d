"""EmbeddingScatter layout in a real browser: tall plots keep every point in view, and a
widget without an explicit width fills narrow containers with its legend under the plot."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import write_notebook
from PIL import Image

SETUP = """\
import ipywidgets as W
import numpy as np
from tsimcne_widgets.scatter import EmbeddingScatter

rng = np.random.default_rng(0)
# Two clusters far apart in x, a thin band between them: the data box is 20 x 2.
left = np.c_[rng.normal(-10, 0.2, 300), rng.normal(0, 0.2, 300)]
right = np.c_[rng.normal(10, 0.2, 300), rng.normal(0, 0.2, 300)]
middle = np.c_[rng.uniform(-9, 9, 200), rng.uniform(-1, 1, 200)]
xy = np.vstack([left, right, middle]).astype(np.float32)
labels = np.repeat(["left", "right", "middle"], [300, 300, 200])
colors = {"left": "#d62728", "right": "#1f77b4", "middle": "#7f7f7f"}
tall = EmbeddingScatter(xy, labels=labels, colors=colors, width=200, height=400,
                        point_size=6, opacity=1.0, title="tall")
narrow = EmbeddingScatter(xy, labels=labels, colors=colors, height=300, title="narrow")
W.VBox([tall, W.Box([narrow], layout=W.Layout(width="380px"))])"""


def rgb_of(locator):
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def count(rgb, colour):
    return int((np.abs(rgb - np.array(colour)).sum(axis=-1) < 60).sum())


@pytest.fixture(scope="module")
def page(notebook_page, lab):
    write_notebook(lab.nbdir / "layout.ipynb", SETUP)
    notebook_page.open("layout.ipynb")
    notebook_page.run_all()
    notebook_page.page.wait_for_function(
        "() => { const e = document.querySelectorAll('.tsw-scatter-host');"
        " return e.length === 2 && [...e].every(h => Number(h.dataset.draws) >= 1); }",
        timeout=120_000)
    return notebook_page.page


def test_tall_plot_shows_both_far_clusters(page):
    canvas = page.locator(".tsw-scatter-host").nth(0).locator("canvas.tsw-canvas")
    canvas.scroll_into_view_if_needed()
    bb = canvas.bounding_box()
    assert abs(bb["width"] - 200) < 1 and abs(bb["height"] - 400) < 1
    rgb = rgb_of(canvas)
    w = rgb.shape[1]
    # The red cluster is drawn in the left quarter, the blue one in the right quarter.
    assert count(rgb[:, : w // 4], (214, 39, 40)) > 50
    assert count(rgb[:, 3 * w // 4:], (31, 119, 180)) > 50
    assert count(rgb[:, w // 4: 3 * w // 4], (214, 39, 40)) == 0


def test_narrow_widget_fills_its_box_with_the_legend_below(page):
    host = page.locator(".tsw-scatter-host").nth(1)
    # The widget first draws at a default width, then follows its box (ResizeObserver).
    # The widget first draws at a default width, then follows its box (ResizeObserver).
    page.wait_for_function("() => document.querySelectorAll('.tsw-scatter-host')[1]"
                           ".querySelector('.tsw-scatter').classList.contains('tsw-below')",
                           timeout=30_000)
    assert "tsw-below" in host.locator(".tsw-scatter").get_attribute("class")
    canvas = host.locator("canvas.tsw-canvas")
    legend = host.locator(".tsw-legend")
    cb, lb, hb = canvas.bounding_box(), legend.bounding_box(), host.bounding_box()
    assert lb["y"] >= cb["y"] + cb["height"] - 1  # under the plot, not beside it
    assert hb["width"] <= 381 and cb["width"] > 300  # fills the 380 px box, no overflow
    rgb = rgb_of(canvas)
    assert count(rgb, (214, 39, 40)) > 50 and count(rgb, (31, 119, 180)) > 50
