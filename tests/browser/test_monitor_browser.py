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
m = TrainingMonitor(estimator=est, images=d.images[:256].numpy(), update_interval=0.1)
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
    out = nbp.kernel("print(est._trainer.steps_done > 0, est.transform(m.images).shape)")
    assert out.split()[0] == "True" and "(256, 128)" in out


# ----------------------------------------------------------------- theme and legibility
CURVE_DATA = """\
steps = np.arange(1, 41, dtype=np.float32) * 10
with m.curves.hold_sync():
    m.curves.total_steps = 400
    m.curves.stage_bounds = [200.0, 300.0]
    m.curves.epoch_steps = steps.tobytes()
    m.curves.loss = np.linspace(6.0, 4.5, 40, dtype=np.float32).tobytes()
    # A learning rate that ends near zero: its minimum label used to sit under the line.
    m.curves.lr = np.linspace(1e-3, 2.52e-8, 40, dtype=np.float32).tobytes()
    m.curves.knn_steps = steps[::4].tobytes()
    m.curves.knn = np.linspace(0.2, 0.9, 10, dtype=np.float32).tobytes()
print(True)"""

# Every text of the curves: its fill, the chain of backgrounds behind it up to the first
# opaque one, and whether its box overlaps its panel's plot area (where lines are drawn).
JS_CURVE_TEXTS = """() => {
  const svg = document.querySelector('.tsw-monitor svg.tsw-curves');
  const backgrounds = [];
  for (let e = svg; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    backgrounds.push(c);
    const m = c.match(/[\\d.]+/g);
    if (m && (m.length < 4 || +m[3] === 1)) break;
  }
  const boxes = (sel, root) => Array.from(root.querySelectorAll(sel))
    .map(n => n.getBoundingClientRect());
  const overlap = (a, b) => a.left < b.right && b.left < a.right &&
    a.top < b.bottom && b.top < a.bottom;
  const texts = [];
  for (const g of svg.querySelectorAll('.tsw-panel')) {
    const plot = g.querySelector('svg.tsw-plot').getBoundingClientRect();
    for (const t of g.querySelectorAll('text')) {
      texts.push({text: t.textContent, fill: getComputedStyle(t).fill,
                  over_plot: overlap(t.getBoundingClientRect(), plot)});
    }
  }
  return {backgrounds, texts, lines: svg.querySelectorAll('path.tsw-line').length};
}"""


def _rgba(css: str) -> tuple[float, float, float, float]:
    import re

    nums = [float(v) for v in re.findall(r"[\d.]+", css)]
    if len(nums) < 3:
        raise AssertionError(f"not an rgb colour: {css!r}")
    return (*nums[:3], nums[3] if len(nums) > 3 else 1.0)


def _over(top, bottom):
    """``top`` (rgba) composited over the opaque rgb ``bottom``."""
    a = top[3]
    return tuple(a * t + (1 - a) * b for t, b in zip(top[:3], bottom, strict=True))


def _luminance(rgb) -> float:
    def lin(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a, b) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _measure(page):
    state = page.evaluate(JS_CURVE_TEXTS)
    bg = (255.0, 255.0, 255.0)  # the canvas behind a fully transparent chain
    for css in reversed(state["backgrounds"]):
        bg = _over(_rgba(css), bg)
    ratios = {t["text"]: _contrast(_over(_rgba(t["fill"]), bg), bg) for t in state["texts"]}
    return state, bg, ratios


def _set_theme(page, name: str, light: bool) -> None:
    page.evaluate("(name) => window.jupyterapp.commands.execute("
                  "'apputils:change-theme', {theme: name})", name)
    page.wait_for_function(
        "([name, light]) => document.body.dataset.jpThemeName === name && "
        "document.body.dataset.jpThemeLight === String(light)", arg=[name, light],
        timeout=30_000)


def test_curves_stay_legible_when_the_lab_theme_changes(monitor):
    nbp, box = monitor
    page = nbp.page
    nbp.wait_kernel(CURVE_DATA, what="curve data")
    page.wait_for_function(
        "() => document.querySelectorAll('.tsw-monitor path.tsw-line').length === 3")
    box.locator("svg.tsw-curves").scroll_into_view_if_needed()
    expected = {"loss / epoch", "learning rate", "2D kNN accuracy (k=15)", "2.52e-8"}
    try:
        for name, light in (("JupyterLab Light", True), ("JupyterLab Dark", False),
                            ("JupyterLab Light", True)):
            _set_theme(page, name, light)
            # The theme's CSS arrives after the attribute: wait for the background to flip.
            deadline = time.monotonic() + 20
            while True:
                state, bg, ratios = _measure(page)
                dark_bg = _luminance(bg) < 0.2
                if dark_bg != light or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert dark_bg != light, f"{name}: background {bg} did not follow the theme"
            assert expected <= set(ratios), sorted(ratios)
            worst = min(ratios, key=ratios.get)
            assert ratios[worst] >= 4.5, (name, worst, ratios[worst], bg, state["texts"])
            # Titles and axis labels sit in the gutters, never under the lines.
            assert not [t["text"] for t in state["texts"] if t["over_plot"]], state["texts"]
            assert state["lines"] == 3
    finally:
        if page.evaluate("() => document.body.dataset.jpThemeLight") != "true":
            _set_theme(page, "JupyterLab Light", True)
