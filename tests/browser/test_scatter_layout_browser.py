"""EmbeddingScatter layout in a real browser: tall plots keep every point in view, a
widget without an explicit width fills narrow containers with its legend under the plot,
and side-by-side panels (as in MethodComparison) keep identical plots whatever their
titles, badges, legends and placeholders."""

from __future__ import annotations

import io
import time

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


PANELS = """\
import ipywidgets as W
import numpy as np
from tsimcne_widgets.scatter import EmbeddingScatter

rng = np.random.default_rng(0)
xy = rng.normal(size=(600, 2)).astype(np.float32)
long_names = [f"a rather long class name {k}" for k in range(10)]
kw = dict(height=300, point_size=4)
p0 = EmbeddingScatter(xy, labels=rng.integers(0, 3, 600), title="short", **kw)
p1 = EmbeddingScatter(xy, labels=np.array(long_names)[rng.integers(0, 10, 600)],
                      title="a panel with a very long title that cannot fit in the header",
                      badge="iteration 250 of 750 · stage 2", **kw)
p2 = EmbeddingScatter(np.zeros_like(xy), labels=rng.integers(0, 7, 600), title="UMAP",
                      placeholder="computing…", **kw)
panels = [p0, p1, p2]
W.GridBox(panels, layout=W.Layout(grid_template_columns="repeat(3, minmax(0, 1fr))",
                                   width="100%"))"""


@pytest.fixture(scope="module")
def panels(notebook_page, lab):
    write_notebook(lab.nbdir / "panels.ipynb", PANELS)
    notebook_page.open("panels.ipynb")
    notebook_page.run_all()
    notebook_page.page.wait_for_function(
        "() => { const e = document.querySelectorAll('.tsw-scatter-host');"
        " return e.length === 3 && [...e].every(h => Number(h.dataset.draws) >= 1"
        " && h.querySelector('.tsw-scatter').classList.contains('tsw-below')); }",
        timeout=120_000)
    time.sleep(0.5)  # let the panels settle at their grid width
    return notebook_page


def canvas_boxes(page):
    return [page.locator(".tsw-scatter-host").nth(k).locator("canvas.tsw-canvas").bounding_box()
            for k in range(3)]


def test_side_by_side_panels_keep_the_same_plot_size_and_top(panels):
    page = panels.page
    hosts = page.locator(".tsw-scatter-host")
    hosts.nth(0).scroll_into_view_if_needed()
    boxes = canvas_boxes(page)
    for b in boxes[1:]:
        assert abs(b["y"] - boxes[0]["y"]) < 1, boxes  # same top
        assert abs(b["width"] - boxes[0]["width"]) < 1, boxes
        assert abs(b["height"] - 300) < 1, boxes
    for k in range(3):
        head = hosts.nth(k).locator(".tsw-head").bounding_box()
        assert abs(head["height"] - 24) < 1, (k, head)  # one fixed-height row
        # the toolbar is on one row and inside its panel
        btns = [hosts.nth(k).locator(".tsw-tools button").nth(j).bounding_box() for j in range(5)]
        assert len({round(b["y"]) for b in btns}) == 1, (k, btns)
        assert btns[-1]["x"] + btns[-1]["width"] <= hosts.nth(k).bounding_box()["x"] + \
            hosts.nth(k).bounding_box()["width"], (k, btns)
    # the badge overlays the plot (its top inside the canvas), it does not push it down
    badge = hosts.nth(1).locator(".tsw-badge")
    assert badge.is_visible() and badge.inner_text() == "iteration 250 of 750 · stage 2"
    bb = badge.bounding_box()
    assert boxes[1]["y"] <= bb["y"] < boxes[1]["y"] + 20, (bb, boxes[1])
    # a badge arriving later moves nothing either
    panels.kernel("p0.badge = 'epoch 3'; p2.badge = 'iteration 50'")
    page.wait_for_function("() => document.querySelector('.tsw-badge').textContent === 'epoch 3'")
    time.sleep(0.3)
    assert canvas_boxes(page) == boxes


def test_a_crowded_header_cuts_the_counter_before_the_title(panels):
    page = panels.page
    panels.kernel("p0.title = 't-SNE (pixels)'; p0.selection = np.arange(300)")
    page.wait_for_function(
        "() => document.querySelector('.tsw-count').textContent.includes('selected')",
        timeout=30_000)
    head = page.locator(".tsw-scatter-host").nth(0).locator(".tsw-head")
    width, gap, (title, title_full), tools, (count, count_full) = head.evaluate(
        "h => [h.clientWidth, parseFloat(getComputedStyle(h).columnGap),"
        " ...[...h.children].map(c => c.classList.contains('tsw-tools') ? c.offsetWidth"
        " : [c.clientWidth, c.scrollWidth])]")
    room = width - tools - 2 * gap
    assert count < count_full  # the header is crowded: something had to give way
    # The title takes all the room it needs (or all there is) before the counter gets any.
    assert abs(title - min(title_full, room)) <= 1, (width, tools, title, title_full, count)
    assert abs(count - max(0, room - title_full)) <= 1, (width, tools, title, count)
    # A title that fits is never cut, not even by a fraction of a pixel (an ellipsis).
    panels.kernel("p0.title = 't-SNE'")
    page.wait_for_function("() => document.querySelector('.tsw-title').textContent === 't-SNE'")
    title = head.locator(".tsw-title")
    full, shown = title.evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return [r.getBoundingClientRect().width, e.getBoundingClientRect().width]; }")
    assert shown >= full - 0.01, (full, shown)
    assert 0 < head.locator(".tsw-count").evaluate("e => e.clientWidth")


def test_legend_grid_never_leaves_a_class_alone_on_a_row(panels):
    page = panels.page
    for k, n_classes in ((0, 3), (1, 10), (2, 7)):
        items = page.locator(".tsw-scatter-host").nth(k).locator(".tsw-legend-item")
        assert items.count() == n_classes
        rows: dict[int, int] = {}
        for j in range(n_classes):
            y = round(items.nth(j).bounding_box()["y"])
            rows[y] = rows.get(y, 0) + 1
        assert min(rows.values()) >= 2, (k, rows)  # no lone class on a row
        assert len(rows) <= 5, (k, rows)
        if n_classes <= 7:  # short names ("0" .. "6"): one or two rows, not a column
            assert len(rows) <= 2 and (n_classes > 3 or len(rows) == 1), (k, rows)


def test_placeholder_covers_an_empty_panel_until_the_first_frame(panels):
    page = panels.page
    host = page.locator(".tsw-scatter-host").nth(2)
    ph = host.locator(".tsw-placeholder")
    assert ph.is_visible() and ph.inner_text() == "computing…"
    canvas = host.locator("canvas.tsw-canvas")
    pb, cb = ph.bounding_box(), canvas.bounding_box()
    assert abs(pb["width"] - cb["width"]) < 1 and abs(pb["height"] - cb["height"]) < 1
    def coloured(rgb):  # points are in tab10 colours; the texts over the plot are grey
        return int((rgb.max(axis=-1) - rgb.min(axis=-1) > 60).sum())

    # the pile of points at (0, 0) is hidden under it
    page.mouse.move(2, 2)
    assert coloured(rgb_of(canvas)) == 0
    panels.kernel("p2.update(xy, animate=False)")
    ph.wait_for(state="hidden", timeout=30_000)
    assert panels.kernel("print(repr(p2.placeholder))").strip() == "''"
    page.wait_for_function(
        "() => Number(document.querySelectorAll('.tsw-scatter-host')[2].dataset.frame) >= 1")
    time.sleep(0.3)
    assert coloured(rgb_of(canvas)) > 500
