"""EmbeddingScatter in a real JupyterLab + headless Chromium (WebGL through SwiftShader).

The tests share one notebook page (opened once per module) and run in file order: render,
box selection, update from a thread, hover.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from conftest import write_notebook
from PIL import Image

N = 5000
WIDTH, HEIGHT = 520, 400

SETUP = f"""\
import threading
import numpy as np
from tsimcne_widgets.scatter import EmbeddingScatter

rng = np.random.default_rng(0)
xy = rng.random(({N}, 2)).astype(np.float32)
labels = np.array(["alpha", "beta", "gamma", "delta"])[rng.integers(0, 4, {N})]
images = rng.integers(0, 256, size=({N}, 8, 8), dtype=np.uint8)
w = EmbeddingScatter(xy, labels=labels, images=images, title="browser test",
                     height={HEIGHT}, width={WIDTH})
w"""


def screenshot_rgb(locator):
    """An element screenshot as (h, w, 3) uint8: works for WebGL canvases too."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def ink(rgb, bg=(255, 255, 255)):
    return int((np.abs(rgb.astype(int) - np.array(bg)).sum(axis=-1) > 30).sum())


@pytest.fixture(scope="module")
def scatter(notebook_page, lab):
    write_notebook(lab.nbdir / "scatter.ipynb", SETUP)
    nbp = notebook_page
    nbp.open("scatter.ipynb")
    nbp.run_all()
    host = nbp.page.locator(".tsw-scatter-host")
    canvas = host.locator("canvas.tsw-canvas")
    canvas.wait_for(state="visible", timeout=120_000)
    # the first frame (frame 0) has been drawn and acknowledged
    nbp.page.wait_for_function(
        "() => { const e = document.querySelector('.tsw-scatter-host');"
        " return e && Number(e.dataset.draws) >= 1 && e.dataset.frame === '0'; }")
    nbp.wait_kernel("print(w.wait_rendered(0))", what="rendered handshake")
    canvas.scroll_into_view_if_needed()
    return nbp, host, canvas


def test_renders_points(scatter):
    nbp, host, canvas = scatter
    bb = canvas.bounding_box()
    assert abs(bb["width"] - WIDTH) < 1 and abs(bb["height"] - HEIGHT) < 1
    rgb = screenshot_rgb(canvas)
    n_ink = ink(rgb)
    # 5000 points of ~5 px: a good part of the canvas is inked, but not all of it
    assert 0.05 * rgb.shape[0] * rgb.shape[1] < n_ink < 0.95 * rgb.shape[0] * rgb.shape[1], n_ink
    # several category colours are drawn (tab10 blue, orange, green, red)
    assert len({tuple(c) for c in rgb.reshape(-1, 3)[::7]}) > 20
    assert host.locator(".tsw-legend-item").count() == 4
    assert "5,000 points" in host.locator(".tsw-count").inner_text()
    assert host.locator(".tsw-title").inner_text() == "browser test"


def test_box_drag_sets_selection_in_kernel(scatter):
    nbp, host, canvas = scatter
    page = nbp.page
    host.locator("button.tsw-box").click()
    nbp.wait_kernel("print(w.mouse_mode == 'box')", what="mouse_mode to reach the kernel")
    bb = canvas.bounding_box()
    x0, y0, x1, y1 = 150, 120, 330, 260
    page.mouse.move(bb["x"] + x0, bb["y"] + y0)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(bb["x"] + x0 + (x1 - x0) * k / 10, bb["y"] + y0 + (y1 - y0) * k / 10)
        time.sleep(0.02)
    page.mouse.up()
    nbp.wait_kernel("print(len(w.selection) > 0 and len(w.lasso) >= 6)", what="selection")
    out = nbp.kernel(
        "p = np.array(w.lasso, dtype=np.float64).reshape(-1, 2)\n"
        "lo, hi = p.min(axis=0), p.max(axis=0)\n"
        "q = xy.astype(np.float64)\n"
        "inside = np.flatnonzero(((q >= lo) & (q <= hi)).all(axis=1))\n"
        "sel = w.selection\n"
        "print('SEL', len(sel), len(inside), np.array_equal(sel, inside), *np.round(lo, 4),"
        " *np.round(hi, 4), sel.dtype)"
    )
    tag, n_sel, n_ref, same, lx, ly, hx, hy, dtype = out.split()
    assert tag == "SEL" and dtype == "uint32"
    # the rectangle spans 180 x 140 px of a 400 px high plot: a real chunk of the data
    assert int(n_ref) > 200, out
    assert same == "True", f"selection differs from the points inside the box: {out}"
    # the box in data coordinates matches the drag: width/height ratio of 180/140
    assert abs((float(hx) - float(lx)) / (float(hy) - float(ly)) - 180 / 140) < 0.05, out
    assert "selected" in host.locator(".tsw-count").inner_text()
    df_out = nbp.kernel("df = w.selected_dataframe(); print(list(df.columns), len(df))")
    assert "['index', 'x', 'y', 'label']" in df_out and df_out.split()[-1] == n_sel


def test_update_from_thread_changes_the_frame(scatter):
    nbp, host, canvas = scatter
    before = screenshot_rgb(canvas)
    frame0 = int(host.get_attribute("data-frame"))
    nbp.kernel(
        "def _push():\n"
        "    ang = rng.random(len(xy)) * 2 * np.pi\n"
        "    ring = np.c_[np.cos(ang), np.sin(ang)].astype(np.float32)\n"
        "    w.update(ring, animate=False)\n"
        "t_upd = threading.Thread(target=_push, daemon=True)\n"
        "t_upd.start(); t_upd.join(10)\n"
        "print(w._frame)"
    )
    nbp.page.wait_for_function(
        "(f) => Number(document.querySelector('.tsw-scatter-host').dataset.frame) > f",
        arg=frame0, timeout=30_000)
    nbp.wait_kernel("print(w._throttle.in_flight is None)", what="the ack of the new frame")
    after = screenshot_rgb(canvas)
    changed = int((np.abs(before.astype(int) - after.astype(int)).sum(axis=-1) > 30).sum())
    assert changed > 0.05 * before.shape[0] * before.shape[1], changed
    # a ring leaves its middle empty
    h, w = after.shape[:2]
    assert ink(after[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20]) < 50


# Records, for every ack the page sends, the frame number and the ink in the middle of the
# canvas at that very moment (read from the widget's 2D canvas, so no screenshot delay).
ACK_PROBE = """() => {
  const canvas = document.querySelector('.tsw-scatter-host canvas.tsw-canvas');
  const ctx = canvas.getContext('2d');
  const acks = window.__acks = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try { probe(data); } catch (e) { (window.__ackErr = window.__ackErr || []).push(String(e)); }
    return send.call(this, data);
  };
  function probe(data) {
    const text = typeof data === 'string' ? data
      : new TextDecoder().decode(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
    const m = text.match(/"type":\\s*"ack",\\s*"frame":\\s*(\\d+)/);
    if (m) {
      const w = canvas.width, h = canvas.height;
      const px = ctx.getImageData(w / 2 - 20, h / 2 - 20, 40, 40).data;
      let ink = 0;
      for (let i = 0; i < px.length; i += 4) {
        // empty canvas pixels may be transparent (the page shows through)
        if (px[i + 3] > 40 && 765 - px[i] - px[i + 1] - px[i + 2] > 30) ink++;
      }
      acks.push([Number(m[1]), ink]);
    }
  }
}"""


def test_frame_is_acknowledged_only_once_drawn(scatter):
    """Flow control's premise: when the page acknowledges a frame, it is on the canvas."""
    nbp, host, canvas = scatter
    nbp.page.evaluate(ACK_PROBE)
    nbp.kernel(
        "ang = rng.random(len(xy)) * 2 * np.pi\n"
        "ring = np.c_[np.cos(ang), np.sin(ang)].astype(np.float32)\n"
        "frames = []\n"
        "def _push():\n"
        "    for k in range(6):\n"
        "        w.update(xy if k % 2 == 0 else ring, animate=False)\n"
        "        t_end = time.time() + 20\n"
        "        while w._throttle.in_flight is not None or w._throttle.has_pending:\n"
        "            if time.time() > t_end:\n"
        "                raise TimeoutError('no ack')\n"
        "            time.sleep(0.01)\n"
        "        frames.append((w._throttle.frame, 'ring' if k % 2 else 'cloud'))\n"
        "import time\n"
        # not joined here: the kernel handles the page's acks only between cells
        "t_upd = threading.Thread(target=_push, daemon=True)\n"
        "t_upd.start()"
    )
    nbp.wait_kernel("print(not t_upd.is_alive())", timeout=120, what="six acknowledged frames")
    frames = dict(eval(nbp.kernel("print(frames)").strip()))  # {frame: 'cloud' | 'ring'}
    assert len(frames) == 6, frames
    acks = dict(nbp.page.evaluate("() => window.__acks"))
    assert set(frames) <= set(acks), (frames, acks)
    for frame, shape in frames.items():
        # a uniform cloud inks the middle of the plot; a ring leaves it empty
        if shape == "cloud":
            assert acks[frame] > 200, (frame, shape, acks)
        else:
            assert acks[frame] < 20, (frame, shape, acks)


def test_hover_shows_tooltip_with_label_and_thumbnail(scatter):
    nbp, host, canvas = scatter
    page = nbp.page
    host.locator("button.tsw-pan").click()
    bb = canvas.bounding_box()
    tip = host.locator(".tsw-tip")
    # the ring from the previous test crosses the horizontal middle line on the right;
    # sweep across it until a point is under the cursor
    found = False
    for dx in range(120, 250, 2):  # the ring's radius is about 0.95 * height / 2
        page.mouse.move(bb["x"] + bb["width"] / 2 + dx, bb["y"] + bb["height"] / 2)
        time.sleep(0.03)
        if tip.is_visible():
            found = True
            break
    assert found, "no tooltip appeared while sweeping over the ring"
    img = tip.locator("img.tsw-thumb")
    img.wait_for(state="visible", timeout=10_000)
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("(e) => e.naturalWidth", img.element_handle()) == 64
    text = tip.inner_text()
    idx = int(text.split("#")[1].split()[0])
    label = nbp.kernel(f"print(labels[{idx}])").strip()
    assert label in text


def test_legend_toggle_preview_badge_and_theme(scatter):
    nbp, host, canvas = scatter
    page = nbp.page
    page.mouse.move(5, 5)  # away from the plot: no tooltip over the canvas
    def blue(rgb):  # category 0 ("alpha") is drawn in tab10 blue
        return int((np.abs(rgb.astype(int) - (31, 119, 180)).sum(axis=-1) < 40).sum())

    before = blue(screenshot_rgb(canvas))
    assert before > 100
    host.locator(".tsw-legend-item").first.click()
    nbp.wait_kernel("print(w.hidden == [0])", what="legend click to reach the kernel")
    expect_fewer = "() => document.querySelector('.tsw-count').textContent.includes('shown')"
    page.wait_for_function(expect_fewer)
    time.sleep(0.3)
    after = blue(screenshot_rgb(canvas))
    assert after < 0.1 * before, (before, after)
    host.locator(".tsw-legend-item").first.click()
    nbp.wait_kernel("print(w.hidden == [])", what="second legend click")

    preview = host.locator(".tsw-preview")
    assert not preview.is_visible()
    nbp.kernel("w.badge = 'stage 1 · epoch 5'; w.frame_kind = 'preview'")
    preview.wait_for(state="visible")
    assert host.locator(".tsw-badge").inner_text() == "stage 1 · epoch 5"

    nbp.kernel("w.theme = 'dark'")
    page.wait_for_function(
        "() => document.querySelector('.tsw-scatter').classList.contains('tsw-dark')")
    time.sleep(0.3)
    rgb = screenshot_rgb(canvas)
    assert rgb[2, 2].max() < 60, rgb[2, 2]  # dark background
