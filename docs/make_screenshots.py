"""Take the README's screenshots from the real widgets in JupyterLab + headless Chromium.

    .venv/bin/python docs/make_screenshots.py        # writes docs/explorer.png, docs/comparison.png

1. ``explorer.png``: the Explorer while a run on the digits is in its last stage (live
   progress, curves, the scatter and a gallery of a selected cluster).
2. ``comparison.png``: ``MethodComparison.from_estimator`` of that model with t-SNE and UMAP
   on its backbone features, metrics table included, one digit class selected in all panels.

Needs the dev and baselines extras and Debian's chromium (see tests/browser/conftest.py).
Takes about 12 minutes on 2 cores (the demo's schedule; ``TSIMCNE_EPOCHS=5,2,10`` for a
quick look at the layout).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))
from stream_bench import ARGS, CHROMIUM, JS_EVAL, open_and_run, start_lab, stop_lab, write_nb  # noqa: E402

CELLS = [
    """import numpy as np
from tsimcne_widgets import Explorer, load_digits
from tsimcne_widgets.comparison import MethodComparison
digits = load_digits()
explorer = Explorer(digits, backbone="small", total_epochs={epochs}, batch_size=128,
                    lr=(0.015, 0.015, 0.005),
                    augmentations={"hflip": 0.0, "crop_scale": (0.5, 1.0)}, random_state=0)
explorer""",
    "run = explorer.start()",
]

SELECT_CLUSTER = """Z = run.latest.xy  # digits are few enough that snapshots are not subsampled
c = np.median(Z[digits.labels == 3], axis=0)
r = np.percentile(np.linalg.norm(Z[digits.labels == 3] - c, axis=1), 70)
explorer.scatter.selection = np.flatnonzero(np.linalg.norm(Z - c, axis=1) < r)
print(len(explorer.scatter.selection))"""

COMPARE = """explorer.wait()
comparison = MethodComparison.from_estimator(explorer.estimator, digits,
                                             methods=("tsne", "umap"))
display(comparison)"""


def output_of(page, selector):
    """The notebook output area that holds `selector`."""
    return page.locator(".jp-OutputArea-output", has=page.locator(selector)).first


def main():
    root = Path(tempfile.mkdtemp(prefix="shots-"))
    proc, url, nbdir = start_lab(root)
    try:
        epochs = tuple(int(e) for e in os.environ.get("TSIMCNE_EPOCHS", "50,20,200").split(","))
        write_nb(nbdir / "shots.ipynb", [CELLS[0].replace("{epochs}", repr(epochs)), *CELLS[1:]])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1300},
                                      device_scale_factor=1)
            page = ctx.new_page()
            page.set_default_timeout(600_000)
            open_and_run(page, url, "shots.ipynb")
            # More room for the widgets: no file browser.
            page.evaluate("() => window.jupyterapp.commands"
                          ".execute('application:toggle-left-area')")
            page.locator(".tsw-scatter-host").first.wait_for(state="attached", timeout=120_000)
            # Live: wait until the run is well into its last stage.
            while True:
                out = page.evaluate(JS_EVAL, "p = run.progress; print(p.state, p.stage, "
                                             "p.steps_done / max(p.total_steps, 1))")
                state, stage, frac = out.split()
                if state != "running" or (int(stage) == 3 and float(frac) > 0.85):
                    break
                time.sleep(2)
            print("explorer:", out.strip(), flush=True)
            print("selected", page.evaluate(JS_EVAL, SELECT_CLUSTER).strip(), flush=True)
            time.sleep(3)  # gallery thumbnails and the next scatter frame
            shot = output_of(page, ".tsw-scatter-host")
            shot.scroll_into_view_if_needed()
            shot.screenshot(path=str(HERE / "explorer.png"))

            # The comparison, in a new cell under the explorer.
            page.evaluate("""(code) => { const nb = window.jupyterapp.shell.currentWidget;
              nb.content.activeCellIndex = nb.content.widgets.length - 1;
              window.jupyterapp.commands.execute('notebook:insert-cell-below');
              nb.content.activeCell.model.sharedModel.setSource(code);
              return window.jupyterapp.commands.execute('notebook:run-cell'); }""", COMPARE)
            page.wait_for_function("() => document.querySelectorAll('.tsw-scatter-host')"
                                   ".length >= 4", polling=500)
            page.evaluate(JS_EVAL, "comparison.wait()")
            page.evaluate(JS_EVAL, "comparison.selection = np.flatnonzero(digits.labels == 7)")
            time.sleep(3)
            shot = output_of(page, ".tsw-comparison")
            shot.scroll_into_view_if_needed()
            shot.screenshot(path=str(HERE / "comparison.png"))
            browser.close()
    finally:
        stop_lab(proc, root)
    for name in ("explorer.png", "comparison.png"):
        print(HERE / name, (HERE / name).stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
