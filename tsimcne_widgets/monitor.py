"""TrainingMonitor: progress, controls and live curves for a background training run."""

from __future__ import annotations

import html
import threading
import traceback
from pathlib import Path

import anywidget
import ipywidgets as W
import numpy as np
import traitlets as t

__all__ = ["TrainingMonitor", "LiveCurves"]

_STATIC = Path(__file__).parent / "static"
_STATE_COLORS = {
    "idle": "#777", "running": "#2e7d32", "paused": "#ef6c00", "stopping": "#ef6c00",
    "stopped": "#546e7a", "finished": "#1565c0", "failed": "#c62828",
}
_STAGE_LABELS = {"pretrain": "1 pretrain 128-D", "2D readout": "2 2D readout",
                 "fine-tune": "3 fine-tune", "train": "train"}


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _number(value: float, fmt: str) -> str:
    """``value`` formatted, or an en dash while there is none yet (NaN before the first
    batch)."""
    return format(value, fmt) if np.isfinite(value) else "–"


def _details_html(p, state: str) -> str:
    """The progress line under the bars for progress record ``p`` of a run in ``state``.

    The ETA and the throughput describe training that is happening: they are shown only
    while the run is 'running', never for a paused, stopped, finished or failed run.
    """
    stage_label = _STAGE_LABELS.get(p.stage_name, p.stage_name)
    budget = "" if p.time_budget is None else f" of {_clock(p.time_budget)} budget"
    parts = [f"stage {html.escape(stage_label)}", f"epoch {p.epoch}/{p.epochs_in_stage}",
             f"loss {_number(p.loss, '.4g')}", f"lr {_number(p.lr, '.3g')}",
             f"elapsed {_clock(p.elapsed)}{budget}"]
    if state == "running":
        parts += [f"ETA {_clock(p.eta)}", f"{p.views_per_s:.0f} views/s"]
    if getattr(p, "precision", ""):
        parts.append(html.escape(p.precision))
    threads = getattr(p, "threads", 0)
    if threads:
        parts.append(f"{threads} thread{'s' if threads > 1 else ''}")
    if getattr(p, "compiling", False) and state == "running":
        parts.append("compiling the model…")
    elif getattr(p, "compile_seconds", 0.0):
        parts.append(f"compiled in {_clock(p.compile_seconds)}")
    return f"<span class='tsw-progress'>{' · '.join(parts)}</span>"


def _history(run) -> list:
    """The per-epoch records of ``run``: a watched run's ``history``, else its estimator's
    ``history_``."""
    history = getattr(run, "history", None)
    return history if history is not None else run.estimator.history_


def _f32(values) -> bytes:
    return np.asarray(values, dtype=np.float32).tobytes()


_THEMES = ("auto", "light", "dark")


def _check_theme(theme) -> str:
    if theme not in _THEMES:
        raise ValueError(f"theme must be one of {', '.join(map(repr, _THEMES))}, got {theme!r}.")
    return theme


class LiveCurves(anywidget.AnyWidget):
    """Loss, learning rate and 2D kNN accuracy against the training step.

    Drawn as SVG. With ``theme='auto'`` the text, frame and background follow
    JupyterLab's theme CSS variables (``--jp-ui-font-color1``, ``--jp-layout-color0``,
    ``--jp-border-color1``), so switching the Lab theme re-styles the curves at once;
    outside JupyterLab the text takes the page's own colour. 'light' and 'dark' fix
    the colours.
    """

    _esm = _STATIC / "curves.js"
    theme = t.Unicode("auto").tag(sync=True)
    loss = t.Bytes(b"").tag(sync=True)
    lr = t.Bytes(b"").tag(sync=True)
    epoch_steps = t.Bytes(b"").tag(sync=True)
    knn = t.Bytes(b"").tag(sync=True)
    knn_steps = t.Bytes(b"").tag(sync=True)
    stage_bounds = t.List(t.Float()).tag(sync=True)
    total_steps = t.Int(1).tag(sync=True)

    @t.validate("theme")
    def _valid_theme(self, proposal):
        return _check_theme(proposal["value"])


class TrainingMonitor(W.VBox):
    """Progress bars, Start/Pause/Stop buttons and live curves for a training run.

    Parameters
    ----------
    run : TrainingRun, optional
        A run to follow at once.
    estimator : TSimCNE, optional
        With ``images``, lets the Start button begin (or resume) training.
    images : optional
        The training images, anything ``TSimCNE.start`` accepts.
    labels : array-like, optional
        Labels; enable the live 2D kNN accuracy curve.
    start_kwargs : dict, optional
        Extra keyword arguments for ``TSimCNE.start``.
    update_interval : float, default=0.25
        Seconds between widget updates (throttle).
    starter : callable, optional
        Called with no arguments by the Start button to begin a run and return it
        (the Explorer uses this); default ``estimator.start(images, labels=labels, ...)``.
    theme : {'auto', 'light', 'dark'}, default='auto'
        Colours of the curves: 'auto' follows the JupyterLab theme, also when it is
        switched while the monitor is shown.

    Attributes
    ----------
    run : TrainingRun or None
        The run being shown.
    knn_history : list of (step, accuracy)
        kNN accuracy (k=15, fixed stratified hold-out) of each snapshot.
    """

    def __init__(self, run=None, *, estimator=None, images=None, labels=None, start_kwargs=None,
                 update_interval=0.25, starter=None, theme="auto", **kwargs):
        _check_theme(theme)
        self.starter = starter
        self.estimator = estimator if estimator is not None else getattr(run, "estimator", None)
        self.images = images
        self.labels = labels
        self.start_kwargs = dict(start_kwargs or {})
        self.update_interval = update_interval
        self.run = None
        self.knn_history: list[tuple[float, float]] = []
        self._curve_lock = threading.Lock()
        self._epochs: list[tuple[float, float, float]] = []
        self._n_history = 0  # records of the run's history in _epochs
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()

        self.status = W.HTML(layout=W.Layout(width="auto"))
        self.overall = W.FloatProgress(min=0, max=1, description="total",
                                       layout=W.Layout(width="340px"))
        self.stage_bar = W.FloatProgress(min=0, max=1, description="stage",
                                         layout=W.Layout(width="340px"))
        self.details = W.HTML()
        self.start_button = W.Button(description="Start", icon="play")
        self.pause_button = W.Button(description="Pause", icon="pause")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger")
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self._toggle_pause())
        self.stop_button.on_click(lambda _: self.stop())
        self.error = W.HTML()
        self.traceback = W.HTML()
        self.error_box = W.Accordion(children=[self.traceback], selected_index=None)
        self.error_box.set_title(0, "Traceback")
        self.error_box.layout.display = "none"
        self.curves = LiveCurves(theme=theme)
        super().__init__(children=[
            W.HBox([self.status, self.start_button, self.pause_button, self.stop_button]),
            W.HBox([self.overall, self.stage_bar]),
            self.details, self.error, self.error_box, self.curves,
        ], **kwargs)
        self.add_class("tsw-monitor")
        if run is not None:
            self.attach(run)
        else:
            self._render_state("idle")

    # -- controls -----------------------------------------------------------------------
    def start(self):
        """Start training (or resume a stopped run); restart after finished/failed."""
        if self.run is not None and not self.run.done:
            return self.run
        if self.starter is not None:
            return self.starter()
        if self.estimator is None or self.images is None:
            raise ValueError("Start needs estimator= and images= (or attach a run).")
        restart = self.run is not None and self.run.state in ("finished", "failed")
        run = self.estimator.start(self.images, labels=self.labels, restart=restart,
                                   **self.start_kwargs)
        self.attach(run)
        return run

    def _toggle_pause(self):
        if self.run is None:
            return
        if self.run.state == "paused":
            self.run.resume()
        else:
            self.run.pause()
        self._refresh()

    def stop(self):
        if self.run is not None:
            self.run.stop()
            self._refresh()

    # -- following a run ----------------------------------------------------------------
    def attach(self, run) -> None:
        """Follow ``run``: progress, buttons and curves update until it ends."""
        self.run = run
        if self.estimator is None:
            self.estimator = run.estimator
        if self.labels is None:
            self.labels = run.labels
        if self.images is None:
            self.images = run.data
        history = _history(run)
        with self._curve_lock:
            self._epochs = [(self._global_step(h), h["loss"], h["lr"]) for h in history]
            self._n_history = len(history)
        self._set_axes(run)
        run.on("epoch_end", self._on_epoch)
        if run.labels is not None:
            run.on("snapshot", self._on_snapshot)
        for s in run.snapshots:
            self._on_snapshot(s)
        self._refresh()
        self._poller = threading.Thread(target=self._poll, args=(run,), daemon=True,
                                        name="tsimcne-monitor")
        self._poller.start()

    def _set_axes(self, run) -> None:
        bounds, acc = [], 0
        for st in run.schedule[:-1]:
            acc += st.epochs * run.steps_per_epoch
            bounds.append(float(acc))
        with self.curves.hold_sync():
            self.curves.total_steps = max(1, run.progress.total_steps)
            self.curves.stage_bounds = bounds

    def _global_step(self, h) -> float:
        run = self.run
        before = sum(s.epochs for s in run.schedule[: h["stage"] - 1])
        return float((before + h["epoch"]) * run.steps_per_epoch)

    def _on_epoch(self, progress) -> None:
        # Every record not yet shown: events can arrive after several epochs (a watched
        # run catching up), and a watched run's history restarts with a fresh run.
        history = _history(self.run)
        with self._curve_lock:
            if len(history) < self._n_history:
                self._epochs, self._n_history = [], 0
            for h in history[self._n_history:]:
                self._epochs.append((self._global_step(h), h["loss"], h["lr"]))
            self._n_history = len(history)

    def _on_snapshot(self, snap) -> None:
        from .metrics import knn_accuracy

        labels = np.asarray(self.run.labels)
        if snap.indices is not None:
            labels = labels[snap.indices]
        try:
            acc = knn_accuracy(snap.xy, labels, k=15, test_size=0.1, random_state=0)
        except ValueError:
            return  # too few points per class for a hold-out
        with self._curve_lock:
            self.knn_history.append((float(snap.step), float(acc)))

    def _poll(self, run) -> None:
        while not self._closed.is_set():
            done = run.done
            self._refresh()
            if done or self.run is not run:
                return
            self._closed.wait(self.update_interval)

    def _refresh(self) -> None:
        run = self.run
        if run is None:
            return
        p = run.progress
        if self.curves.total_steps <= 1 < p.total_steps:
            self._set_axes(run)  # a watched run's schedule, unknown when attached
        with self._curve_lock:
            ep = np.asarray(self._epochs, dtype=np.float32).reshape(-1, 3)
            kn = np.asarray(self.knn_history, dtype=np.float32).reshape(-1, 2)
        state = run.state
        with self.hold_sync():
            self.overall.value = p.fraction
            self.stage_bar.value = p.step_in_stage / p.steps_in_stage if p.steps_in_stage else 0.0
            self.stage_bar.description = f"stage {p.stage}/{p.n_stages}"
            self.details.value = _details_html(p, state)
        with self.curves.hold_sync():
            self.curves.epoch_steps = _f32(ep[:, 0])
            self.curves.loss = _f32(ep[:, 1])
            self.curves.lr = _f32(ep[:, 2])
            self.curves.knn_steps = _f32(kn[:, 0])
            self.curves.knn = _f32(kn[:, 1])
        self._render_state(state)

    def _render_state(self, state: str) -> None:
        can_start = self.estimator is not None and self.images is not None
        active = state in ("running", "paused", "stopping")
        self.start_button.disabled = active or not can_start
        self.start_button.description = {"stopped": "Resume training", "finished": "Restart",
                                         "failed": "Restart"}.get(state, "Start")
        # A watched run (another process) obeys Pause and Stop only if it reads control.json.
        controllable = getattr(self.run, "controllable", True)
        self.pause_button.disabled = state not in ("running", "paused") or not controllable
        self.pause_button.description = "Resume" if state == "paused" else "Pause"
        self.pause_button.icon = "play" if state == "paused" else "pause"
        self.stop_button.disabled = state not in ("running", "paused") or not controllable
        if hasattr(self.run, "controllable"):
            tip = ("Sent to the training process through control.json" if controllable else
                   "This run does not read control.json (or control=False): watch only")
            self.pause_button.tooltip = self.stop_button.tooltip = tip
            self.start_button.tooltip = "The run trains in another process"
        if state == "failed" and self.run is not None and self.run.exception is not None:
            exc = self.run.exception
            self.error.value = (f"<div class='tsw-error' style='color:#c62828'><b>"
                                f"{html.escape(type(exc).__name__)}:</b> "
                                f"{html.escape(str(exc))}</div>")
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.traceback.value = f"<pre class='tsw-traceback'>{html.escape(tb)}</pre>"
            self.error_box.layout.display = None
        else:
            self.error.value = ""
            self.traceback.value = ""
            self.error_box.layout.display = "none"
        # The state badge last: whoever sees 'failed' also finds the error and buttons.
        color = _STATE_COLORS.get(state, "#777")
        self.status.value = (
            f"<b class='tsw-state' data-state='{state}' style='color:white;background:{color};"
            f"padding:2px 8px;border-radius:4px'>{state}</b>"
        )

    def close(self):
        # getattr: ipywidgets also closes a monitor whose __init__ raised early.
        closed = getattr(self, "_closed", None)
        if closed is not None:
            closed.set()
        super().close()
