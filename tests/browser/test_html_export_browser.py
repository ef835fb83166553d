"""The standalone comparison HTML links brushing across panels in a real browser, with no
kernel, and shows a hostile label as text."""

import re

import numpy as np
import pandas as pd

from tsimcne_widgets.export_html import save_html

JS_STATE = """() => {
  const doc = window.Bokeh.documents[0];
  const src = doc.get_model_by_name('points');
  const panels = [0, 1, 2].map(i => doc.get_model_by_name('points' + i));
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
        Bokeh.documents[0].get_model_by_name('points' + i).data_source.selected.indices)
        .sort((a, b) => a - b))""")
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
