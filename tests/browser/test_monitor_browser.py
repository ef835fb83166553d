"""TrainingMonitor buttons drive the kernel-side run from a real JupyterLab page."""

from __future__ import annotations

import time

import pytest
from conftest import write_notebook

MONITOR = """\
import numpy as np
from tsimcne_widgets import TSimCNE, TrainingMonitor, load_digits
d = load_digits()
est = TSimCNE(backbone="small", total_epochs=(2000, 1, 1), batch_size=64,
              augmentations={"hflip": 0.0}, random_state=0)
m = TrainingMonitor(estimator=est, data=d.images[:256].numpy(), update_interval=0.1)
m"""

@pytest.fixture(scope="module")
def monitor(notebook_page, lab):
    write_notebook(lab.nbdir / "monitor.ipynb", MONITOR)
    notebook_page.open("monitor.ipynb")
    notebook_page.run_all()
    box = notebook_page.page.locator(".tsw-monitor")
    box.wait_for(state="visible", timeout=120_000)
    return notebook_page, box


def test_monitor_buttons_drive_the_kernel_side_run(monitor):
    nbp, box = monitor
    page = nbp.page
    box.get_by_role("button", name="Start").click()
    nbp.wait_kernel("print(m.run is not None and m.run.state == 'running')", what="start")
    progress = box.locator(".tsw-progress")
    progress.wait_for(timeout=30_000)
    first = progress.inner_text()
    deadline = time.monotonic() + 30
    while progress.inner_text() == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert progress.inner_text() != first, "progress text did not change while training"

    box.get_by_role("button", name="Pause").click()
    nbp.wait_kernel("print(m.run.state == 'paused')", what="pause from the page")
    page.wait_for_function(
        "() => document.querySelector('.tsw-state')?.dataset.state === 'paused'")
    box.get_by_role("button", name="Resume").click()
    nbp.wait_kernel("print(m.run.state == 'running')", what="resume from the page")
    box.get_by_role("button", name="Stop").click()
    nbp.wait_kernel("print(m.run.state == 'stopped')", what="stop from the page")
    out = nbp.kernel("print(est._trainer.steps_done > 0, est.transform(m.data).shape)")
    assert out.split()[0] == "True" and "(256, 128)" in out
