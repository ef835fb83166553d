"""EmbeddingScatter's selection tools in a real browser: a freehand lasso selects exactly the
points inside the drawn outline, a selection dims the other points, no tooltip during a
drag, and optional axes whose tick labels follow the view.

The tests share one notebook page and run in file order.
"""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import pytest
from conftest import write_notebook
from PIL import Image

WIDTH, HEIGHT = 480, 400

SETUP = f"""\
import json
import numpy as np
from tsimcne_widgets.scatter import EmbeddingScatter

rng = np.random.default_rng(1)
# Three tight clusters and sparse background points: the box around a lasso drawn around a
# cluster holds background points that lie outside the lasso itself.
centres = np.array([[-6.0, 3.0], [5.0, 4.0], [0.0, -5.0]])
clusters = np.vstack([c + rng.normal(0, 0.7, (150, 2)) for c in centres])
noise = rng.uniform([-10, -9], [10, 8], (300, 2))
xy = np.vstack([clusters, noise]).astype(np.float32)
labels = np.repeat(["a", "b", "c", "noise"], [150, 150, 150, 300])
colors = {{"a": "#d62728", "b": "#1f77b4", "c": "#2ca02c", "noise": "#9467bd"}}
w = EmbeddingScatter(xy, labels=labels, colors=colors, width={WIDTH}, height={HEIGHT},
                     point_size=6, opacity=1.0, title="lasso")
ax = EmbeddingScatter(xy, labels=labels, colors=colors, width={WIDTH}, height=300,
                      point_size=4, axes=True, title="axes")
import ipywidgets as W
W.VBox([w, ax])"""


def rgb_of(locator):
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def view_of(host):
    """The data range in view (left, right, bottom, top), as the widget reports it."""
    return [float(v) for v in host.get_attribute("data-view").split(",")]


def to_screen(view, x, y, w, h):
    x0, x1, y0, y1 = view
    return (x - x0) / (x1 - x0) * w, (y1 - y) / (y1 - y0) * h


def to_data(view, px, py, w, h):
    x0, x1, y0, y1 = view
    return x0 + px / w * (x1 - x0), y1 - py / h * (y1 - y0)


@pytest.fixture(scope="module")
def nb(notebook_page, lab):
    write_notebook(lab.nbdir / "lasso.ipynb", SETUP)
    notebook_page.open("lasso.ipynb")
    notebook_page.run_all()
    notebook_page.page.wait_for_function(
        "() => { const e = document.querySelectorAll('.tsw-scatter-host');"
        " return e.length === 2 && [...e].every(h => Number(h.dataset.draws) >= 1"
        " && h.dataset.view); }", timeout=120_000)
    notebook_page.wait_kernel("print(w.wait_rendered(0) and ax.wait_rendered(0))",
                              what="rendered handshake")
    data = json.loads(notebook_page.kernel("print(json.dumps(xy.tolist()))"))
    return notebook_page, np.asarray(data, dtype=np.float64)


def drag_path(page, bb, path, check=None):
    """Press at path[0], move through every point (slowly enough that the lasso, which
    samples the pointer every 15 ms, records each), release at the last one."""
    page.mouse.move(bb["x"] + path[0][0], bb["y"] + path[0][1])
    page.mouse.down()
    seen = []
    for px, py in path[1:]:
        page.mouse.move(bb["x"] + px, bb["y"] + py)
        time.sleep(0.03)
        if check is not None:
            seen.append(check())
    page.mouse.up()
    return seen


def in_polygon(p, poly):
    """Even-odd rule point-in-polygon test (ray casting to the right), vectorised."""
    x, y = p[:, 0:1], p[:, 1:2]
    ax, ay = poly[:, 0], poly[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    crosses = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = ax + (y - ay) * (bx - ax) / (by - ay)
    return ((crosses & (x < xc)).sum(axis=1) % 2) == 1


def seg_dist(p, poly):
    """Distance from each point of p (m, 2) to the closed polyline poly (k, 2)."""
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    t = ((p[:, None, :] - a[None]) * ab[None]).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-12)
    t = np.clip(t, 0, 1)
    near = a[None] + t[..., None] * ab[None]
    return np.sqrt(((p[:, None, :] - near) ** 2).sum(-1)).min(axis=1)


def test_freehand_lasso_selects_the_points_inside_the_outline(nb):
    nbp, xy = nb
    page = nbp.page
    host = page.locator(".tsw-scatter-host").nth(0)
    canvas = host.locator("canvas.tsw-canvas")
    canvas.scroll_into_view_if_needed()
    page.mouse.move(2, 2)
    before = rgb_of(canvas)  # for the dimming test below
    host.locator("button.tsw-lasso").click()
    nbp.wait_kernel("print(w.mouse_mode == 'lasso')", what="lasso mode in the kernel")
    assert "tsw-on" in host.locator("button.tsw-lasso").get_attribute("class")
    assert "tsw-on" not in host.locator("button.tsw-pan").get_attribute("class")
    bb = canvas.bounding_box()
    view = view_of(host)
    # A wobbly closed outline around cluster "a" (centre (-6, 3)), 72 pointer moves.
    cx, cy = to_screen(view, -6.0, 3.0, bb["width"], bb["height"])
    r = 3.4 / (view[1] - view[0]) * bb["width"]  # 3.4 data units: past the cluster's 4.8 sd
    path = [(cx + r * (1 + 0.22 * math.sin(3 * a)) * math.cos(a),
             cy + r * (1 + 0.22 * math.sin(3 * a)) * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 73)]
    tip = host.locator(".tsw-tip")
    tips = drag_path(page, bb, path, check=tip.is_visible)
    assert not any(tips), "the hover tooltip showed during the lasso drag"
    nbp.wait_kernel("print(len(w.selection) > 0 and len(w.lasso) >= 40)", what="selection")

    sel = np.asarray(json.loads(nbp.kernel("print(json.dumps(w.selection.tolist()))")))
    poly = np.asarray(json.loads(nbp.kernel("print(json.dumps(w.lasso))"))).reshape(-1, 2)
    px_per_unit = bb["width"] / (view[1] - view[0])

    # 1. The polygon the widget reports is the drawn path, mapped to data coordinates as the
    #    widget maps the screen: a freehand outline, not a rectangle. Within 1.5 px: the
    #    browser rounds pointer positions to whole pixels.
    screen_poly = np.array([to_data(view, px, py, bb["width"], bb["height"]) for px, py in path])
    assert len(poly) >= 36, len(poly)
    assert seg_dist(poly, screen_poly).max() * px_per_unit < 1.5

    # 2. The selection is exactly the points inside that polygon.
    inside = np.flatnonzero(in_polygon(xy, poly))
    np.testing.assert_array_equal(sel, inside)

    # 3. The same against the screen path itself; points within 2 px of its outline may
    #    differ (pointer positions are whole pixels, and the lasso samples the pointer).
    inside_screen = set(np.flatnonzero(in_polygon(xy, screen_poly)).tolist())
    differ = np.array(sorted(inside_screen ^ set(sel.tolist())), dtype=int)
    if len(differ):
        assert seg_dist(xy[differ], screen_poly).max() * px_per_unit < 2.0, differ

    # The lasso took the whole cluster and nothing of the others; the box around it holds
    # background points that a rectangle would have taken too.
    assert set(range(150)) <= set(sel.tolist())
    assert not set(range(150, 450)) & set(sel.tolist())
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    in_box = np.flatnonzero(((xy >= lo) & (xy <= hi)).all(axis=1))
    assert len(in_box) > len(sel), (len(in_box), len(sel))
    assert f"{len(sel)} selected" in host.locator(".tsw-count").inner_text()

    # 4. A selection dims the other points and keeps the selected ones in their colour.
    page.mouse.move(2, 2)
    time.sleep(0.3)
    after = rgb_of(canvas)
    sel_set = set(sel.tolist())

    def isolated(i):  # no other point within 9 px: its pixel shows only its own colour
        d = np.sqrt(((xy - xy[i]) ** 2).sum(1)) * px_per_unit
        return (d < 9).sum() == 1

    def darkest(rgb, i):  # the most inked pixel at point i (its centre)
        px, py = to_screen(view, *xy[i], bb["width"], bb["height"])
        x, y = int(px), int(py)
        win = rgb[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3)
        return win[np.argmax(765 - win.sum(1))]

    white = np.array([255, 255, 255])
    purple = np.array([148, 103, 189])
    out_pts = [i for i in range(450, 750) if i not in sel_set and isolated(i)
               and 8 < to_screen(view, *xy[i], bb["width"], bb["height"])[0] < bb["width"] - 8
               and 8 < to_screen(view, *xy[i], bb["width"], bb["height"])[1] < bb["height"] - 8]
    in_pts = [i for i in sel_set if i >= 450 and isolated(i)]
    assert len(out_pts) >= 5 and in_pts, (len(out_pts), in_pts)
    for i in out_pts[:10]:
        b, a = darkest(before, i), darkest(after, i)
        assert np.abs(b - purple).sum() < 60, (i, b)  # drawn in its colour before
        # dimmed: much closer to the white background than before
        assert np.abs(a - white).sum() < 0.5 * np.abs(b - white).sum(), (i, b, a)
    for i in in_pts:
        a = darkest(after, i)
        assert np.abs(a - purple).sum() < 60, (i, a)  # a selected point keeps its colour


def test_no_tooltip_while_panning(nb):
    nbp, xy = nb
    page = nbp.page
    host = page.locator(".tsw-scatter-host").nth(0)
    canvas = host.locator("canvas.tsw-canvas")
    host.locator("button.tsw-pan").click()
    nbp.wait_kernel("print(w.mouse_mode == 'pan' and len(w.selection) > 0)", what="pan mode")
    nbp.kernel("w.selection = []")
    bb = canvas.bounding_box()
    view = view_of(host)
    tip = host.locator(".tsw-tip")
    found = None
    for i in range(450, 750):  # hover a background point until its tooltip shows
        px, py = to_screen(view, *xy[i], bb["width"], bb["height"])
        if not (20 < px < bb["width"] - 60 and 20 < py < bb["height"] - 60):
            continue
        page.mouse.move(bb["x"] + px, bb["y"] + py)
        time.sleep(0.05)
        if tip.is_visible():
            found = (px, py)
            break
    assert found, "no tooltip on any background point"
    px, py = found
    seen = drag_path(page, bb, [(px, py)] + [(px + 4 * k, py + 3 * k) for k in range(1, 12)],
                     check=tip.is_visible)
    assert not any(seen), seen
    nbp.kernel("w.selection = []")


def test_axes_tick_labels_match_the_view_and_follow_zoom(nb):
    nbp, xy = nb
    page = nbp.page
    host = page.locator(".tsw-scatter-host").nth(1)
    canvas = host.locator("canvas.tsw-canvas")
    canvas.scroll_into_view_if_needed()
    bb, pb = canvas.bounding_box(), host.locator(".tsw-plot").bounding_box()
    # the axes take room from the canvas, not from the widget
    assert abs(pb["width"] - WIDTH) < 1 and abs(pb["height"] - 300) < 1, pb
    assert bb["width"] < WIDTH - 30 and bb["height"] < 300 - 12, bb
    assert page.locator(".tsw-scatter-host").nth(0).locator(".tsw-xtick").count() == 0

    def ticks(cls):
        loc = host.locator(f".tsw-axes text.{cls}")
        return [float(s.replace("−", "-")) for s in loc.all_text_contents()]

    view = view_of(host)
    xt, yt = ticks("tsw-xtick"), ticks("tsw-ytick")
    assert len(xt) >= 3 and len(yt) >= 3, (xt, yt)
    assert view[0] <= min(xt) and max(xt) <= view[1], (xt, view)
    assert view[2] <= min(yt) and max(yt) <= view[3], (yt, view)
    # the data (x in [-10, 10], y in [-9, 8]) fills the view, so do the ticks
    assert min(xt) <= -5 and max(xt) >= 5 and min(yt) <= -5 and max(yt) >= 5, (xt, yt)
    # a tick label sits where its value is drawn: compare with a point's position
    first = host.locator(".tsw-axes text.tsw-xtick").first
    fb = first.bounding_box()
    px = (xt[0] - view[0]) / (view[1] - view[0]) * bb["width"] + bb["x"]
    assert abs(fb["x"] + fb["width"] / 2 - px) < 2, (fb, px)

    page.mouse.move(bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2)
    for _ in range(5):
        page.mouse.wheel(0, -200)
        time.sleep(0.1)
    page.wait_for_function(
        "(v) => { const e = document.querySelectorAll('.tsw-scatter-host')[1];"
        " const w = e.dataset.view.split(',').map(Number); return w[1] - w[0] < 0.8 * v; }",
        arg=view[1] - view[0], timeout=10_000)
    time.sleep(0.3)
    zoomed = view_of(host)
    xt2 = ticks("tsw-xtick")
    assert xt2 != xt and zoomed[0] <= min(xt2) and max(xt2) <= zoomed[1], (xt2, zoomed)
    assert max(xt2) - min(xt2) < max(xt) - min(xt)
