"""Watching a run that trains in another process, through its run directory.

A training script started with ``TSimCNE.start(X, snapshot_dir=path)`` (under torchrun,
Slurm or plain Python) writes a run directory (:mod:`tsimcne_widgets.run_dir`). A
:class:`WatchedRun` follows that directory from a notebook and looks like a
:class:`~tsimcne_widgets.run.TrainingRun` to the widgets: ``Explorer.watch(path, images)``
shows it live. Pause, Resume and Stop reach the training process through the
directory's ``control.json``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ._kernel_poll import wait_event
from ._runbase import RunBase
from .progress import Progress
from .run import EVENTS
from .run_dir import RunDirReader, RunDirWarning, write_control
from .schedule import Stage
from .snapshots import Snapshot

__all__ = ["WatchedRun", "RemoteRunError", "watch"]

_PROGRESS_FIELDS = {f.name for f in dataclasses.fields(Progress)}
_ENDS = ("finished", "stopped", "failed")


class RemoteRunError(RuntimeError):
    """The watched training process failed; the message is its ``"Type: message"``."""


def _progress_from(record: dict, previous: Progress) -> Progress:
    fields = {k: v for k, v in record.items() if k in _PROGRESS_FIELDS}
    for k, v in fields.items():
        if v is None and isinstance(getattr(previous, k), float):
            fields[k] = float("nan")  # written as null
    try:
        return dataclasses.replace(previous, **fields)
    except TypeError:
        return previous


def _stage_from(record: dict):
    try:
        return Stage(**record)
    except TypeError:  # not all of Stage's fields: enough for the widgets
        return SimpleNamespace(name=str(record.get("name", "")),
                               epochs=int(record.get("epochs", 0)))


class WatchedRun(RunBase):
    """A training run in another process, followed through its run directory.

    It offers what the widgets use of a :class:`~tsimcne_widgets.run.TrainingRun`:
    ``state``, ``progress``, ``snapshots``, ``latest``, ``done``, ``exception``,
    ``errors``, ``on``/``off``, ``wait``, ``pause``, ``resume``, ``stop``, ``schedule``,
    ``steps_per_epoch``, ``labels`` and ``data``. A worker thread reads the directory's
    new index records every ``poll_interval`` seconds and emits the same events:
    'snapshot', 'epoch_end', 'stage_change', and 'finished', 'stopped' or 'failed' when
    the run's end record arrives; the watcher then ends too. Create it with
    :func:`watch` or ``WatchedRun(path, ...).start()``.

    ``pause``, ``resume`` and ``stop`` write ``control.json``, which the training process
    obeys at its next batch boundary (within about half a second);
    :attr:`controllable` says whether it reads that file. To stop watching without
    touching the training, call :meth:`close`.

    ``state`` is the training process's ('running', 'paused', 'stopping', 'stopped',
    'finished', 'failed'), 'idle' before its first record, and 'detached' after
    :meth:`close` before the run ended. A training process killed without an end record
    leaves the watcher 'running'; ``updated`` tells when the last record came.

    Parameters
    ----------
    path : str or Path
        The run directory (``snapshot_dir`` of ``TSimCNE.start``). It may not exist yet.
    images : anything :func:`~tsimcne_widgets.as_images` accepts, optional
        The training images, for the gallery and to check the snapshots against.
    labels : array-like, optional
        Labels of the images (for colours and the live kNN accuracy).
    poll_interval : float, default=0.5
        Seconds between two looks at the directory.
    max_snapshots : int, default=200
        How many recent snapshots ``snapshots`` keeps.
    control : bool, default=True
        Let ``pause``, ``resume`` and ``stop`` write ``control.json``. False watches
        only.

    Attributes
    ----------
    path : Path
    data : ImageData or None
        The images, as converted.
    labels : ndarray or None
    class_names : tuple of str or None
    history : list of dict
        One record per finished epoch, as the estimator's ``history_`` (plus ``step``).
    meta : dict or None
        The directory's ``meta.json``, once read.
    estimator : None
        There is no estimator in this process.
    errors : list of Exception
        Exceptions of event callbacks, and snapshots that do not fit the images.
    updated : float or None
        ``time.time()`` when the last new record was read.

    Raises
    ------
    ValueError
        If ``meta.json`` exists and its number of images differs from ``images``.
    """

    EVENTS = EVENTS

    def __init__(self, path, *, images=None, labels=None, poll_interval=0.5,
                 max_snapshots=200, control=True):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__}.")
        if not (isinstance(poll_interval, numbers.Real) and poll_interval > 0):
            raise ValueError(f"poll_interval must be seconds > 0, got {poll_interval!r}.")
        if not (isinstance(max_snapshots, numbers.Integral) and max_snapshots >= 1):
            raise ValueError(f"max_snapshots must be an int >= 1, got {max_snapshots!r}.")
        super().__init__(max_snapshots=max_snapshots, worker_name="tsimcne-watch")
        self.path = Path(path)
        self.poll_interval = float(poll_interval)
        self.control = bool(control)
        self.data = None
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = None
        if images is not None:
            from .data import as_images

            self.data = as_images(images, labels=labels)
            self.labels, self.class_names = self.data.labels, self.data.class_names
        self.estimator = None
        self.history: list[dict] = []
        self.meta: dict | None = None
        self.updated: float | None = None
        self._progress = Progress()
        self._reader = RunDirReader(self.path)
        self._closing = threading.Event()
        self._stage_seen = 0
        self._misfit_warned = False
        meta = self._reader.read_meta()
        if meta is not None:
            self._check_meta(meta)  # raises here, on the caller's thread
            self._set_meta(meta)

    # -- public API ---------------------------------------------------------------------
    @property
    def progress(self) -> Progress:
        """The latest :class:`Progress` the training process reported."""
        with self._lock:
            return self._progress

    @property
    def schedule(self) -> list:
        """The stages of ``meta.json`` (empty before it is read)."""
        meta = self.meta or {}
        return [_stage_from(s) for s in meta.get("schedule", []) if isinstance(s, dict)]

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch (0 before ``meta.json`` is read)."""
        return int((self.meta or {}).get("steps_per_epoch", 0))

    @property
    def controllable(self) -> bool:
        """Whether ``pause``, ``resume`` and ``stop`` reach the training process: ``control``
        is on and the run says (in ``meta.json``) that it reads ``control.json``. True
        before ``meta.json`` exists."""
        return self.control and bool((self.meta or {}).get("control", True))

    def start(self) -> WatchedRun:
        """Start watching (the worker thread); returns ``self``. Register callbacks first
        to see every event."""
        if self._worker.ident is None and not self.done:
            self._launch()
        return self

    def pause(self) -> None:
        """Ask the training process to pause at its next batch boundary."""
        if self.state == "running":
            self._command("pause")

    def resume(self) -> None:
        """Ask a paused training process to continue."""
        if self.state == "paused":
            self._command("resume")

    def stop(self) -> None:
        """Ask the training process to stop at its next batch boundary (it then writes
        its end record, which ends this watcher). Safe to call any number of times."""
        with self._lock:
            if self._state not in ("running", "paused") or not self.controllable:
                return
            self._set_state_locked("stopping")
        self._command("stop")

    def close(self) -> None:
        """Stop watching; the training process goes on. Safe to call any number of
        times."""
        self._closing.set()
        if self._worker.ident is None and not self.done:
            self._end_watch("detached")

    def wait(self, timeout: float | None = None) -> WatchedRun:
        """Block until the watched run ends (or :meth:`close`), then return ``self``.

        Raises :class:`RemoteRunError` if the run failed and ``TimeoutError`` if
        ``timeout`` seconds pass first. Unlike a local run's, a KeyboardInterrupt only
        stops the waiting: the training process goes on.
        """
        if not wait_event(self._done, timeout):
            raise TimeoutError(f"the watched run is still {self.state} after {timeout} s")
        if self._dispatcher.ident is not None and (
                threading.current_thread() is not self._dispatcher):
            self._dispatcher.join(timeout=10)
        if self._exc is not None:
            raise self._exc
        return self

    def on(self, event: str, callback: Callable) -> Callable:
        """Call ``callback(payload)`` on ``event``, off the watcher thread; payloads as for
        :meth:`TrainingRun.on <tsimcne_widgets.run.TrainingRun.on>` ('failed' gets a
        :class:`RemoteRunError`)."""
        return super().on(event, callback)

    def __repr__(self) -> str:
        p = self.progress
        return (f"<WatchedRun {str(self.path)!r} {self.state}: stage {p.stage}/{p.n_stages} "
                f"epoch {p.epoch}/{p.epochs_in_stage}, {len(self._snapshots)} snapshots>")

    # -- internals ----------------------------------------------------------------------
    def _name(self) -> str:
        return "the watched run"

    def _set_state_locked(self, state: str) -> None:
        self._state = state
        self._progress = dataclasses.replace(self._progress, state=state)

    def _command(self, command: str) -> None:
        if self.controllable:
            write_control(self.path, command)

    def _check_meta(self, meta: dict) -> None:
        n = self.data.n_samples if self.data is not None else None
        if n is not None and meta.get("n_samples") not in (None, n):
            raise ValueError(f"images has {n} images, but the run in {str(self.path)!r} "
                             f"trains on {meta['n_samples']} (its meta.json).")

    def _set_meta(self, meta: dict) -> None:
        self.meta = meta
        with self._lock:  # the schedule's size, before the first progress record
            if self._progress.total_steps == 0 and meta.get("schedule"):
                self._progress = _progress_from(
                    {"total_steps": int(meta.get("total_steps", 0)),
                     "n_stages": len(meta["schedule"])}, self._progress)

    def _fits(self, snap: Snapshot) -> bool:
        """Whether ``snap`` shows points of the given images; warns once if not."""
        if self.data is None:
            return True
        n = self.data.n_samples
        ok = len(snap.xy) == n if snap.indices is None else (
            len(snap.indices) == 0 or int(snap.indices.max()) < n)
        if not ok and not self._misfit_warned:
            self._misfit_warned = True
            exc = ValueError(f"the snapshots in {str(self.path)!r} have "
                             f"{len(snap.xy)} points, which do not fit the {n} images given; "
                             "they are skipped.")
            self.errors.append(exc)
            warnings.warn(str(exc), RunDirWarning, stacklevel=2)
        return ok

    def _work(self) -> None:
        outcome = "detached"
        try:
            while not self._closing.is_set():
                ended = self._poll()
                if ended is not None:
                    outcome = ended
                    break
                self._closing.wait(self.poll_interval)
        except BaseException as exc:  # noqa: BLE001 - a watcher bug: handed to wait()
            self._exc, outcome = exc, "failed"
        self._end_watch(outcome)

    def _end_watch(self, outcome: str) -> None:
        if outcome in _ENDS:
            self._finish(outcome)
        else:  # no event: the training did not end
            self._set_state(outcome)
            self._events.put(None)
            self._done.set()

    def _poll(self) -> str | None:
        """Read new records; returns the run's end state once its end record came."""
        reset, records = self._reader.poll()
        if reset:
            self._reset()
        if not records:
            return None
        self.updated = records[-1].get("time", None)
        # Catching up on many snapshots at once: only the newest max_snapshots are kept.
        snaps = [i for i, r in enumerate(records) if r["type"] == "snapshot"]
        skip = set(snaps[:max(0, len(snaps) - self._snapshots.maxlen)])
        for i, rec in enumerate(records):
            kind = rec["type"]
            if kind == "start":
                self._on_start(rec)
            elif kind == "snapshot" and i not in skip:
                snap = self._reader.load(rec)
                if snap is not None and self._fits(snap):
                    self._add_snapshot(snap)
            elif kind == "epoch":
                self._on_epoch(rec)
            elif kind == "progress":
                self._on_progress(rec)
            elif kind == "end":
                return self._on_end(rec)
        return None

    def _reset(self) -> None:
        """A fresh run replaced the index: forget the earlier one."""
        with self._lock:
            self._snapshots.clear()
            self.history = []
            self._stage_seen = 0

    def _on_start(self, rec: dict) -> None:
        meta = self._reader.read_meta()
        if meta is not None:
            try:
                self._check_meta(meta)
            except ValueError as exc:  # too late to raise: warn, as for a snapshot
                self.errors.append(exc)
                warnings.warn(str(exc), RunDirWarning, stacklevel=2)
            self._set_meta(meta)
        if rec.get("resumed"):
            # Drop what the earlier session wrote after the checkpoint resumed from.
            step = rec.get("step", math.inf)
            with self._lock:
                kept = [s for s in self._snapshots if s.step <= step]
                self._snapshots.clear()
                self._snapshots.extend(kept)
                self.history = [h for h in self.history if h.get("step", 0) <= step]
        with self._lock:
            if self._state not in ("stopping",):
                self._set_state_locked("running")

    def _on_epoch(self, rec: dict) -> None:
        entry = {k: v for k, v in rec.items() if k not in ("type", "time")}
        for k in ("loss", "lr", "seconds"):
            if entry.get(k) is None:
                entry[k] = float("nan")
        self.history.append(entry)
        with self._lock:
            self._progress = dataclasses.replace(
                self._progress, stage=int(entry.get("stage", self._progress.stage)),
                epoch=int(entry.get("epoch", self._progress.epoch)))
            p = self._progress
        self._emit("epoch_end", p)
        self._see_stage(p)

    def _on_progress(self, rec: dict) -> None:
        with self._lock:
            p = _progress_from(rec, self._progress)
            state = p.state
            if self._state == "stopping" and state in ("running", "paused"):
                state = "stopping"  # our stop command is on its way
            self._progress = dataclasses.replace(p, state=state)
            self._state = state
            p = self._progress
        self._see_stage(p)

    def _see_stage(self, p: Progress) -> None:
        if p.stage > self._stage_seen:
            if self._stage_seen:
                self._emit("stage_change", p)
            self._stage_seen = p.stage

    def _on_end(self, rec: dict) -> str:
        state = rec.get("state")
        if state not in _ENDS:
            state = "failed"
        if state == "failed":
            self._exc = RemoteRunError(rec.get("error") or "the training process failed")
        return state


def watch(path, *, images=None, labels=None, poll_interval=0.5, max_snapshots=200,
          control=True) -> WatchedRun:
    """Start watching run directory ``path``; see :class:`WatchedRun`.

    Returns
    -------
    WatchedRun
        Already watching.
    """
    return WatchedRun(path, images=images, labels=labels, poll_interval=poll_interval,
                      max_snapshots=max_snapshots, control=control).start()
