"""Notebooks as a user runs them in JupyterLab: the monitor's buttons work while a cell
waits (Run All), and every widget renders again after a page reload."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import write_notebook
from nbformat.v4 import new_code_cell

QUICKSTART = Path(__file__).parents[2] / "notebooks" / "01_quickstart.ipynb"
# Long enough that the wait cell still runs when the test clicks (it stops the run).
SHORTEN = 'import os\nos.environ["TSIMCNE_EPOCHS"] = "2000,2,2"'
JS_CELL_RUNNING = """(i) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  return nb.widgets[i].promptNode.textContent.includes('*');
}"""


def _epoch_and_loss(text: str) -> str:
    m = re.search(r"epoch \d+/\d+ · loss \S+", text)
    return m.group(0) if m else ""


def _save_and_reload(nbp) -> None:
    nbp.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    time.sleep(1)
    nbp.page.reload()
    nbp.page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
        timeout=120_000, polling=250)


@pytest.fixture(scope="module")
def quickstart(notebook_page, lab):
    nb = nbformat.read(QUICKSTART, as_version=4)
    nb.cells.insert(0, new_code_cell(SHORTEN))
    nbformat.write(nb, str(lab.nbdir / "quickstart.ipynb"))
    notebook_page.open("quickstart.ipynb")
    wait_index = next(i for i, c in enumerate(nb.cells) if "explorer.wait()" in c.source)
    # Not run_all(): its promise resolves only once every cell has run.
    notebook_page.page.evaluate(
        "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return notebook_page, wait_index


def test_pause_resume_stop_work_while_the_wait_cell_runs(quickstart):
    nbp, wait_index = quickstart
    page = nbp.page
    box = page.locator(".tsw-monitor")
    progress = box.locator(".tsw-progress")
    progress.wait_for(timeout=120_000)
    page.wait_for_function(JS_CELL_RUNNING, arg=wait_index, timeout=120_000)
    # Training advances while the cell waits.
    first = _epoch_and_loss(progress.inner_text())
    deadline = time.monotonic() + 60
    while _epoch_and_loss(progress.inner_text()) == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _epoch_and_loss(progress.inner_text()) != first, "no training progress"

    box.get_by_role("button", name="Pause").click()
    # The kernel is busy in explorer.wait(): read the state from the widget's DOM.
    page.wait_for_function(
        "() => document.querySelector('.tsw-state')?.dataset.state === 'paused'",
        timeout=30_000)
    frozen = _epoch_and_loss(progress.inner_text())
    time.sleep(3)
    assert _epoch_and_loss(progress.inner_text()) == frozen, "training went on while paused"
    assert page.evaluate(JS_CELL_RUNNING, wait_index), "the wait cell ended on Pause"

    # A reload while the cell waits: the widgets come back at once, and still work.
    _save_and_reload(nbp)
    box = page.locator(".tsw-monitor")
    box.wait_for(state="visible", timeout=20_000)
    assert "Loading widget" not in nbp.outputs()
    page.wait_for_function(
        "() => document.querySelector('.tsw-state')?.dataset.state === 'paused'",
        timeout=20_000)

    box.get_by_role("button", name="Resume").click()
    page.wait_for_function(
        "() => document.querySelector('.tsw-state')?.dataset.state === 'running'",
        timeout=30_000)
    box.get_by_role("button", name="Stop").click()
    # The wait cell returns, the rest of the notebook runs on the map as far as it got.
    # (Their outputs go to the page that ran them, gone with the reload: ask the kernel.)
    out = nbp.wait_kernel("print(run.state == 'stopped' and explorer.run is run, run.state)",
                          timeout=120, what="the run to stop")
    assert out.split() == ["True", "stopped"]
    assert nbp.kernel("print(Z.shape, len(df) > 0)").split() == ["(1797,", "2)", "True"]


SEPARATE = """\
import numpy as np
from tsimcne_widgets import Explorer, load_digits
d = load_digits()
ex = Explorer(d.images[:300].numpy(), labels=d.labels[:300], backbone="small",
              total_epochs=(1, 1, 1), batch_size=64)
ex.scatter.selection = np.arange(12)
ex"""


def test_widgets_shown_alone_render_again_after_a_reload(notebook_page, lab):
    nbp = notebook_page
    path = lab.nbdir / "separate.ipynb"
    write_notebook(path, SEPARATE)
    nb = nbformat.read(path, as_version=4)
    nb.cells += [new_code_cell("ex.gallery"), new_code_cell("ex.scatter")]
    nbformat.write(nb, str(path))
    nbp.open("separate.ipynb")
    nbp.run_all()
    page = nbp.page
    # The Explorer holds one gallery and one scatter; the two cells show them again.
    page.locator(".tsw-gallery").nth(1).wait_for(timeout=120_000)
    page.locator(".tsw-scatter-host").nth(1).wait_for(timeout=60_000)
    nbp.wait_kernel("print(True)", what="the cells to finish")

    _save_and_reload(nbp)
    galleries, scatters = page.locator(".tsw-gallery"), page.locator(".tsw-scatter-host")
    galleries.nth(1).wait_for(timeout=30_000)
    scatters.nth(1).wait_for(timeout=30_000)
    assert galleries.count() == 2 and scatters.count() == 2
    for i in range(2):
        assert galleries.nth(i).locator(".tsw-thumb").count() == 12
        assert scatters.nth(i).locator("canvas").count() > 0
    text = nbp.outputs()
    assert "model not found" not in text and "Error displaying widget" not in text
