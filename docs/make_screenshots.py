"""Take the README's screenshots from the real widgets in JupyterLab + headless Chromium.

    .venv/bin/python docs/make_screenshots.py        # writes docs/explorer.png, docs/comparison.png

1. ``explorer.png``: the Explorer while a run on 10,000 Fashion-MNIST photographs (the CPU
   recipe with a time budget) is in its last stage: live progress, curves, the scatter and
   a gallery of a selected cluster.
2. ``comparison.png``: ``MethodComparison.from_estimator`` of that model next to t-SNE on the
   pixels and on its backbone features, metrics table included, the sandals selected in
   all panels.

Needs the dev and baselines extras, Debian's chromium (see tests/browser/conftest.py) and the
Fashion-MNIST cache (``tsimcne-widgets fetch fashion-mnist``). Takes the time budget
(``TSIMCNE_BUDGET``, default ``10min``) plus about 3 minutes on 2 cores.
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
from tsimcne_widgets import Explorer, load_fashion_mnist
from tsimcne_widgets.comparison import MethodComparison
from tsimcne_widgets.recipes import cpu_recipe
fashion = load_fashion_mnist(subset=10000)
explorer = Explorer(fashion, **cpu_recipe(time_budget={budget!r}), random_state=0)
explorer""",
    "run = explorer.start()",
]

SELECT_CLUSTER = """snap = run.latest
Z = snap.xy
idx = np.arange(len(Z)) if snap.indices is None else snap.indices
bag = fashion.labels[idx] == fashion.class_names.index("Bag")
c = np.median(Z[bag], axis=0)
r = np.percentile(np.linalg.norm(Z[bag] - c, axis=1), 50)
explorer.scatter.selection = idx[np.linalg.norm(Z - c, axis=1) < r]
print(len(explorer.scatter.selection))"""

COMPARE = """explorer.wait()
comparison = MethodComparison.from_estimator(explorer.estimator, fashion,
                                             methods=("tsne:pixels", "tsne"))
display(comparison)"""


def output_of(page, selector):
    """The notebook output area that holds `selector`."""
    return page.locator(".jp-OutputArea-output", has=page.locator(selector)).first


def main():
    root = Path(tempfile.mkdtemp(prefix="shots-"))
    proc, url, nbdir = start_lab(root)
    try:
        budget = os.environ.get("TSIMCNE_BUDGET", "10min")
        write_nb(nbdir / "shots.ipynb", [CELLS[0].replace("{budget!r}", repr(budget)),
                                         *CELLS[1:]])
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
            page.evaluate(JS_EVAL, "comparison.selection = np.flatnonzero(fashion.labels == "
                                   "fashion.class_names.index('Sandal'))")
            time.sleep(3)
            shot = output_of(page, ".tsw-comparison")
            shot.scroll_into_view_if_needed()
            shot.screenshot(path=str(HERE / "comparison.png"))
            # For the README's caption: the epochs the budget allowed and the scores shown.
            print(page.evaluate(JS_EVAL, "print([st.epochs for st in explorer.estimator"
                                         ".schedule_]); print(comparison.metrics().round(3)"
                                         ".to_string())").strip(), flush=True)
            browser.close()
    finally:
        stop_lab(proc, root)
    for name in ("explorer.png", "comparison.png"):
        print(HERE / name, (HERE / name).stat().st_size // 1024, "KiB")


if __name__ == "__main__":
    main()
