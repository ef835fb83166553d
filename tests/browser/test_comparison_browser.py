"""MethodComparison: a lasso in one panel selects in all panels, in a real JupyterLab page."""

from __future__ import annotations

import time

import pytest
from conftest import NotebookPage, write_notebook

COMPARISON = """\
import numpy as np
from tsimcne_widgets.comparison import MethodComparison
rng = np.random.default_rng(0)
emb = {name: rng.random((2000, 2)).astype(np.float32) for name in ("A", "B", "C")}
comp = MethodComparison(emb, labels=rng.integers(0, 3, 2000), height=300)
comp"""


@pytest.fixture(scope="module")
def comparison(browser, lab):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    nbp = NotebookPage(page, lab)
    write_notebook(lab.nbdir / "comparison.ipynb", COMPARISON)
    nbp.open("comparison.ipynb")
    nbp.run_all()
    hosts = page.locator(".tsw-scatter-host")
    hosts.nth(2).locator("canvas.tsw-canvas").wait_for(state="visible", timeout=120_000)
    nbp.wait_kernel("print(all(p.wait_rendered(0) for p in comp.panels.values()))",
                    what="all panels rendered")
    yield nbp, hosts
    ctx.close()


def test_lasso_in_one_panel_selects_in_all(comparison):
    nbp, hosts = comparison
    page = nbp.page
    host = hosts.nth(1)
    host.locator("button.tsw-box").click()  # the drag below is a box's diagonal
    nbp.wait_kernel("print(comp.panels['B'].mouse_mode == 'box')", what="box mode")
    canvas = host.locator("canvas.tsw-canvas")
    canvas.scroll_into_view_if_needed()
    bb = canvas.bounding_box()
    x0, y0 = bb["x"] + bb["width"] * 0.3, bb["y"] + bb["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x0 + bb["width"] * 0.3 * k / 10, y0 + bb["height"] * 0.3 * k / 10)
        time.sleep(0.02)
    page.mouse.up()
    nbp.wait_kernel("print(len(comp.panels['B'].selection) > 0)", what="selection in B")
    out = nbp.kernel(
        "a, b, c = (comp.panels[k].selection for k in 'ABC')\n"
        "print(len(b), np.array_equal(a, b), np.array_equal(c, b))")
    n, ab, cb = out.split()
    assert int(n) > 20 and ab == "True" and cb == "True", out
