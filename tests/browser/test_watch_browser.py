"""Explorer.watch in a real JupyterLab + headless Chromium: snapshots written into a run
directory (here by the kernel itself, as a training process elsewhere would) reach the
scatter on the page, and the monitor follows the run's state."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from conftest import write_notebook
from PIL import Image

N = 2000

SETUP = f"""\
import tempfile
import numpy as np
from tsimcne_widgets.explorer import Explorer
from tsimcne_widgets.run import Progress
from tsimcne_widgets.run_dir import RunDirWriter
from tsimcne_widgets.snapshots import Snapshot

rng = np.random.default_rng(0)
images = rng.integers(0, 256, ({N}, 8, 8), dtype=np.uint8)
labels = rng.integers(0, 4, {N})
run_dir = tempfile.mkdtemp()
writer = RunDirWriter(run_dir)
writer.write_meta(n_samples={N}, schedule=[{{"name": "train", "epochs": 10}}],
                  steps_per_epoch=1, batch_size=32)

def push(step, xy):
    writer.write_snapshot(Snapshot(np.asarray(xy, np.float32), 1, step, step, 1.0, "embedding"))
    writer.write_progress(Progress(state="running", n_stages=1, stage_name="train", epoch=step,
                                   epochs_in_stage=10, steps_done=step, total_steps=10),
                          force=True)

push(0, rng.normal(size=({N}, 2)))
ex = Explorer.watch(run_dir, images, labels=labels, poll_interval=0.1,
                    scatter_kwargs={{"height": 400}})
ex"""

RING = (
    f"ang = rng.random({N}) * 2 * np.pi\n"
    "push(1, np.c_[np.cos(ang), np.sin(ang)])\n"
    "print('pushed')"
)


def screenshot_rgb(locator):
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def ink(rgb, bg=(255, 255, 255)):
    return int((np.abs(rgb.astype(int) - np.array(bg)).sum(axis=-1) > 30).sum())


def frame_of(host) -> int:
    return int(host.get_attribute("data-frame") or -1)


@pytest.fixture(scope="module")
def watched(notebook_page, lab):
    write_notebook(lab.nbdir / "watch.ipynb", SETUP)
    nbp = notebook_page
    nbp.open("watch.ipynb")
    nbp.run_all()
    host = nbp.page.locator(".tsw-scatter-host")
    canvas = host.locator("canvas.tsw-canvas")
    canvas.wait_for(state="visible", timeout=120_000)
    # The first snapshot has replaced the pixel PCA, and the page has drawn it.
    nbp.wait_kernel("print(len(ex.run.snapshots) == 1 and ex.scatter._throttle.in_flight is None"
                    " and ex.scatter._frame >= 1)", what="the first snapshot on the page")
    nbp.page.wait_for_function(
        "(f) => Number(document.querySelector('.tsw-scatter-host').dataset.frame) >= f",
        arg=int(nbp.kernel("print(ex.scatter._frame)")), timeout=30_000)
    canvas.scroll_into_view_if_needed()
    return nbp, host, canvas


def test_new_snapshot_files_change_the_scatter(watched):
    nbp, host, canvas = watched
    page = nbp.page
    state = page.locator(".tsw-monitor .tsw-state")
    assert state.get_attribute("data-state") == "running"
    assert page.locator(".tsw-monitor").get_by_role("button", name="Pause").is_enabled()
    assert not page.locator(".tsw-monitor").get_by_role("button", name="Start").is_enabled()
    time.sleep(1)  # the first frame's animation has ended
    before = screenshot_rgb(canvas)
    h, w = before.shape[:2]
    assert ink(before[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20]) > 50  # a blob
    frame0 = frame_of(host)
    assert "pushed" in nbp.kernel(RING)
    page.wait_for_function(
        "(f) => Number(document.querySelector('.tsw-scatter-host').dataset.frame) > f",
        arg=frame0, timeout=30_000)
    # The ring is drawn once its animation ends: its middle is empty.
    deadline = time.monotonic() + 15
    while True:
        after = screenshot_rgb(canvas)
        if ink(after[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20]) < 50:
            break
        assert time.monotonic() < deadline, "the ring never showed"
        time.sleep(0.3)
    changed = int((np.abs(before.astype(int) - after.astype(int)).sum(axis=-1) > 30).sum())
    assert changed > 0.05 * h * w, changed
    assert nbp.kernel("print(len(ex.run.snapshots), ex.history.max)").split() == ["2", "1"]


def test_the_end_record_finishes_the_watch(watched):
    nbp, host, canvas = watched
    nbp.kernel("writer.write_end('finished')")
    nbp.page.wait_for_function(
        "() => document.querySelector('.tsw-monitor .tsw-state')?.dataset.state === 'finished'",
        timeout=30_000)
    assert nbp.kernel("print(ex.run.done, ex.run.state)").split() == ["True", "finished"]
