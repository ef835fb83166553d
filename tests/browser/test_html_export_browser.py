"""The standalone comparison HTML links brushing across panels in a real browser, with no
kernel, and shows a hostile label as text."""

import re

import numpy as np
import pandas as pd

from tsimcne_widgets.export_html import save_html

JS_STATE = """() => {
  const doc = window.Bokeh.documents[0];
  const src = doc.get_model_by_name('points');
  // Every renderer of every panel (one per class).
  const panels = [0, 1, 2].flatMap(i => doc.get_model_by_name('panel' + i).renderers);
  return {
    selected: Array.from(src.selected.indices).sort((a, b) => a - b),
    shared: panels.every(r => r.data_source === src),
  };
}"""


def test_linked_brushing_and_escaping(browser, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    emb = {name: rng.uniform(0, 1, size=(n, 2)) for name in ("t-SimCNE", "t-SNE", "UMAP")}
    labels = np.array(["<img src=x onerror=alert(1)>", "cat"])[rng.integers(0, 2, n)]
    meta = pd.DataFrame({"file": [f"<b>{i}</b>.png" for i in range(n)]})
    images = rng.integers(0, 255, size=(n, 8, 8), dtype=np.uint8)
    path = save_html(tmp_path / "cmp.html", emb, labels=labels, images=images, metadata=meta,
                     title="<script>alert(2)</script>")
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30000)
    page.wait_for_selector("canvas")
    assert page.evaluate(JS_STATE) == {"selected": [], "shared": True}
    # Box-select (the active drag tool) over the middle of the first panel.
    canvas = page.locator(".bk-Figure").first
    canvas.wait_for()
    bb = canvas.bounding_box()
    x0, y0 = bb["x"] + bb["width"] * 0.3, bb["y"] + bb["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + bb["width"] * 0.3, y0 + bb["height"] * 0.3, steps=8)
    page.mouse.up()
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('points')"
                           ".selected.indices.length > 0", timeout=10000)
    state = page.evaluate(JS_STATE)
    assert state["shared"] and 5 < len(state["selected"]) < n
    # The same points are selected in the other panels: they draw from the same source,
    # so check each renderer's view of the selection.
    others = page.evaluate("""() => [1, 2].map(i => Array.from(
        Bokeh.documents[0].get_model_by_name('panel' + i).renderers[0].data_source
        .selected.indices).sort((a, b) => a - b))""")
    assert others == [state["selected"], state["selected"]]
    # The title is text, and no injected script or handler ran.
    # (Bokeh renders into shadow roots; Playwright's text locators pierce them.)
    assert page.get_by_text("<script>alert(2)</script>", exact=True).count() == 1
    # Hover until a tooltip shows: labels and metadata appear as text, thumbnails as images.
    tip = page.locator(".bk-Tooltip, .bk-tooltip").first
    found = False
    for fy in np.linspace(0.15, 0.85, 15):
        for fx in np.linspace(0.15, 0.85, 15):
            page.mouse.move(bb["x"] + bb["width"] * fx, bb["y"] + bb["height"] * fy)
            if page.get_by_text(".png", exact=False).count():
                found = True
                break
        if found:
            break
    assert found, "no hover tooltip appeared"
    assert page.get_by_text(re.compile(r"<b>\d+</b>\.png")).count() >= 1
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("img[src^='data:image/png;base64,']").count() >= 1
    del tip
    assert dialogs == []
    ctx.close()


# ------------------------------------------------------------ legend, axes and selection
HOSTILE = "<img src=x onerror=alert(1)>"

# Per class (legend order): its label and the visible flags of its renderers, panel by
# panel.
JS_LEGEND = """() => {
  const doc = Bokeh.documents[0];
  const legend = doc.get_model_by_name('legend');
  return legend.items.map(it => ({
    label: it.label.value,
    visible: [0, 1, 2].map(i => doc.get_model_by_name('panel' + i).renderers
      .filter(r => r.name.endsWith('-' + legend.items.indexOf(it)))[0].visible),
  }));
}"""

# The page rectangle of panel i's canvas and of its plot frame.
JS_PANEL_BOX = """(i) => {
  const doc = Bokeh.documents[0];
  const fig = doc.get_model_by_name('panel' + i);
  for (const root of Object.values(Bokeh.index)) {
    const v = root.owner.get_one(fig);
    if (!v) continue;
    const c = v.canvas_view.el.getBoundingClientRect();
    const f = v.frame.bbox;
    return {x: c.left, y: c.top, fx: c.left + f.left, fy: c.top + f.top, fw: f.width,
            fh: f.height};
  }
  return null;
}"""


def _open(browser, path):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=30000)
    page.wait_for_selector("canvas")
    page.wait_for_function(f"({JS_PANEL_BOX})(2) !== null", timeout=30000)
    return ctx, page, dialogs


def _pixels(page, box, *, frame=True):
    """RGB pixels of panel ``box``'s plot frame (or of the gutter left of it)."""
    import io

    from PIL import Image

    if frame:
        clip = {"x": box["fx"] + 2, "y": box["fy"] + 2, "width": box["fw"] - 4,
                "height": box["fh"] - 4}
    else:
        clip = {"x": box["x"], "y": box["fy"], "width": box["fx"] - box["x"] - 2,
                "height": box["fh"]}
    png = page.screenshot(clip=clip)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _coloured(rgb) -> int:
    """Pixels of a strong colour (points drawn at full alpha, not dimmed or white)."""
    return int(((rgb.max(-1) - rgb.min(-1)) > 80).sum())


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    emb = {name: rng.uniform(0, 1, size=(n, 2)) for name in ("t-SimCNE", "t-SNE", "UMAP")}
    labels = np.array([HOSTILE, "cat", "dog"])[np.arange(n) % 3]
    return emb, labels


def test_legend_hides_a_class_in_every_panel(browser, tmp_path):
    emb, labels = _data()
    path = save_html(tmp_path / "legend.html", emb, labels=labels)
    ctx, page, dialogs = _open(browser, path)
    state = page.evaluate(JS_LEGEND)
    # Every class has an entry, its name as text (Bokeh renders the legend in shadow DOM;
    # Playwright's text locators pierce it).
    assert [s["label"] for s in state] == [HOSTILE, "cat", "dog"]
    assert all(s["visible"] == [True] * 3 for s in state)
    for name in (HOSTILE, "cat", "dog"):
        assert page.get_by_text(name, exact=True).count() == 1, name
    assert page.locator("img[src='x']").count() == 0
    box = page.evaluate(JS_PANEL_BOX, 1)
    before = _coloured(_pixels(page, box))
    page.get_by_text("cat", exact=True).click()
    page.wait_for_function(f"() => !({JS_LEGEND})()[1].visible[0]", timeout=10000)
    state = page.evaluate(JS_LEGEND)
    # 'cat' is hidden in all three panels, the other classes stay.
    assert [s["visible"] for s in state] == [[True] * 3, [False] * 3, [True] * 3]
    page.wait_for_timeout(300)  # a frame to repaint
    hidden = _coloured(_pixels(page, box))
    # A third of the points are gone from panel 2, which has no legend of its own.
    assert 0.45 * before < hidden < 0.85 * before, (before, hidden)
    page.get_by_text("cat", exact=True).click()
    page.wait_for_function(f"() => ({JS_LEGEND})()[1].visible[2]", timeout=10000)
    page.wait_for_timeout(300)
    assert _coloured(_pixels(page, box)) > 0.95 * before
    assert dialogs == []
    ctx.close()


def test_axes_on_request_and_the_selection_dimmed(browser, tmp_path):
    emb, labels = _data()
    plain = save_html(tmp_path / "plain.html", emb, labels=labels)
    fancy = save_html(tmp_path / "fancy.html", emb, labels=labels, axes=True,
                      selection=[3, 4, 5, 6, 7])
    ctx, page, _ = _open(browser, plain)
    box = page.evaluate(JS_PANEL_BOX, 0)
    plain_gutter = _pixels(page, box, frame=False)
    plain_points = _coloured(_pixels(page, box))
    assert page.evaluate("() => Bokeh.documents[0].get_model_by_name('points')"
                         ".selected.indices.length") == 0
    ctx.close()
    ctx, page, _ = _open(browser, fancy)
    box = page.evaluate(JS_PANEL_BOX, 0)
    fancy_gutter = _pixels(page, box, frame=False)
    fancy_points = _coloured(_pixels(page, box))
    assert page.evaluate("() => Array.from(Bokeh.documents[0].get_model_by_name('points')"
                         ".selected.indices)") == [3, 4, 5, 6, 7]
    axes = page.evaluate("""() => [0, 1, 2].map(i => {
      const f = Bokeh.documents[0].get_model_by_name('panel' + i);
      return [...f.left, ...f.below].map(a => a.visible);
    })""")
    ctx.close()
    assert axes == [[True, True]] * 3
    # Tick labels are dark pixels left of the frame; without axes that strip is blank.
    assert (plain_gutter.max(-1) < 128).sum() == 0
    assert (fancy_gutter.max(-1) < 128).sum() > 30
    # Five selected points stay in full colour, the other 395 are dimmed.
    assert fancy_points < 0.15 * plain_points, (fancy_points, plain_points)
