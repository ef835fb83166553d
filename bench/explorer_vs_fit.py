"""Training speed with the live view open in a browser, against a headless ``fit``.

    python bench/explorer_vs_fit.py [--epochs 30,6,30] [--rounds 2] [--n-threads auto]

The same estimator settings (the demo's digits recipe with fixed epochs) train twice per
round, in turn:

- headless: ``TSimCNE(...).fit(X)`` in a fresh Python process;
- live: an ``Explorer`` in JupyterLab with its page open in headless Chromium (the
  harness of ``stream_bench.py``), started from a cell, with the default snapshot cadence,
  so the page draws every snapshot while training goes on.

Throughput is views per second of training wall time: 2 x images x epochs over the time
from the first to the last step (``fit`` without its final ``transform``; the run's
``progress.elapsed``, snapshots included). The goal: live >= 70% of headless.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from playwright.sync_api import sync_playwright  # noqa: E402
from stream_bench import ARGS, CHROMIUM, open_and_run, start_lab, stop_lab, write_nb  # noqa: E402
from train_throughput import cpu_name  # noqa: E402

SETUP = """
import json, time
from tsimcne_widgets import TSimCNE, load_digits
from tsimcne_widgets.recipes import digits_recipe
data = load_digits()
params = digits_recipe(total_epochs=EPOCHS, n_threads=THREADS, random_state=0)
params.pop("time_budget")
"""

HEADLESS = SETUP + """
est = TSimCNE(**params, verbose=False)
t0 = time.perf_counter()
est.fit(data)
seconds = sum(h["seconds"] for h in est.history_)
print(json.dumps({"views": 2 * 128 * (len(data) // 128) * sum(EPOCHS), "step_seconds": seconds,
                  "threads": est.n_threads_}))
"""


def headless(args) -> dict:
    code = HEADLESS.replace("EPOCHS", repr(args.epochs)).replace("THREADS", repr(args.n_threads))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    rec["process_seconds"] = time.perf_counter() - t0
    return rec


def live(args, browser) -> dict:
    root = Path(tempfile.mkdtemp(prefix="explorer-bench-"))
    proc, url, nbdir = start_lab(root)
    result = nbdir / "result.json"
    setup = SETUP.replace("EPOCHS", repr(args.epochs)).replace("THREADS", repr(args.n_threads))
    cells = [
        setup + "\nfrom tsimcne_widgets import Explorer\n"
        "ex = Explorer(data, **params)\nex",
        "run = ex.start()",
        textwrap.dedent(f"""
            run.wait()
            p = run.progress
            steps = sum(h["seconds"] for h in ex.estimator.history_)
            json.dump({{"views": 2 * 128 * (len(data) // 128) * {sum(args.epochs)},
                        "elapsed": p.elapsed, "step_seconds": steps,
                        "snapshots": len(run.snapshots), "threads": ex.estimator.n_threads_}},
                      open({str(result)!r}, "w"))
        """),
    ]
    write_nb(nbdir / "live.ipynb", cells)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_and_run(page, url, "live.ipynb")
        deadline = time.time() + 3600
        while not result.exists() and time.time() < deadline:
            page.wait_for_timeout(1000)
        time.sleep(0.5)
        rec = json.loads(result.read_text())
        frames = page.evaluate("() => document.querySelectorAll('canvas').length")
        rec["canvases"] = frames
        page.close()
        return rec
    finally:
        stop_lab(proc, root)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", default="30,6,30")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n-threads", default="auto")
    args = ap.parse_args()
    args.epochs = tuple(int(e) for e in args.epochs.split(","))
    args.n_threads = args.n_threads if args.n_threads == "auto" else int(args.n_threads)
    print(f"{cpu_name()}; digits recipe, epochs {args.epochs}, batch 128, "
          f"n_threads={args.n_threads!r}", flush=True)
    fit_vps, live_vps, live_steps = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for r in range(args.rounds):
            h = headless(args)
            fit_vps.append(h["views"] / h["step_seconds"])
            print(f"round {r + 1} headless fit: {fit_vps[-1]:.0f} views/s "
                  f"(threads {h['threads']})", flush=True)
            v = live(args, browser)
            live_vps.append(v["views"] / v["elapsed"])
            live_steps.append(v["views"] / v["step_seconds"])
            print(f"round {r + 1} Explorer, page open: {live_vps[-1]:.0f} views/s of run time "
                  f"({live_steps[-1]:.0f} counting only the steps; {v['snapshots']} "
                  f"snapshots; threads {v['threads']})", flush=True)
        browser.close()
    f, lv = statistics.median(fit_vps), statistics.median(live_vps)
    print(f"median: headless {f:.0f} views/s, Explorer with its page open {lv:.0f} views/s "
          f"= {lv / f:.0%} of headless (goal >= 70%)")


if __name__ == "__main__":
    main()
