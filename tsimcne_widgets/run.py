"""Background training runs: a daemon thread that trains, streams snapshots, and can be
paused, resumed, stopped, checkpointed and waited on from the notebook.

The thread talks to the rest of the world only through a lock-protected ``progress``
record, the bounded ``snapshots`` history and events, whose callbacks run on a separate
dispatcher thread so that a slow or failing callback never stalls training.
"""

from __future__ import annotations

import atexit
import math
import numbers
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ._openmp import release_caller_workers
from ._runbase import RunBase
from .progress import STATES, Progress
from .run_dir import RunDirWriter
from .snapshots import Snapshot, StablePCA
from .trainer import NonFiniteLossError, StepInfo, Trainer

__all__ = ["Progress", "RunHooks", "TrainingRun", "EVENTS", "STATES"]

EVENTS = ("epoch_end", "stage_change", "snapshot", "finished", "failed", "stopped")
_ACTIVE = ("running", "paused", "stopping")
_LIVE_RUNS: weakref.WeakSet = weakref.WeakSet()


@dataclass(frozen=True)
class RunHooks:
    """What a :class:`TrainingRun` needs from the estimator it trains, and nothing more.

    The estimator builds one in :meth:`TSimCNE.start`; the run touches the model only
    through these, and the estimator's fitted attributes are set by its own hooks.

    Attributes
    ----------
    trainer : Trainer
        Steps the schedule; the run attaches the images (``set_images``), calls
        ``step`` and ``pause_clock`` and reads the position, ``schedule`` and
        ``epoch_mean_loss``.
    embed : callable
        ``embed(images)``: the model's output for uint8 images ``(N, C, H, W)``, as a
        float32 array ``(N, d)``, leaving the modules' train/eval modes as they were.
    on_step : callable
        ``on_step(info)`` with the :class:`StepInfo` of every step, on the training
        thread (the estimator records ``history_``).
    on_finish : callable
        ``on_finish(embedding)`` with the training images' embedding once the schedule
        is complete (the estimator sets ``embedding_``).
    save : callable
        ``save(path)`` writes a checkpoint, from the training thread.
    seed : int
        Seeds the choice of subsampled snapshot points.
    precision : str
        'bf16' or 'fp32', shown in ``progress``.
    """

    trainer: Trainer
    embed: Callable
    on_step: Callable[[StepInfo], None]
    on_finish: Callable
    save: Callable
    seed: int
    precision: str


class TrainingRun(RunBase):
    """A t-SimCNE training run in a background thread. Create it with
    :meth:`TSimCNE.start`; do not instantiate it directly.

    Stop a run with ``run.stop()`` (idempotent; it takes effect at the next batch
    boundary). Interrupting ``run.wait()`` with Ctrl-C / the notebook's stop button
    stops the run too. Interpreter exit stops every live run.

    ``state`` is one of 'idle', 'running', 'paused', 'stopping', 'stopped', 'finished',
    'failed'.

    Parameters
    ----------
    hooks : RunHooks
        The trainer and the estimator's callbacks: all the run uses of the estimator.
    data : ImageData
        The training images.
    estimator : object, optional
        Returned by :meth:`wait`, and kept as ``estimator`` for widgets.

    Attributes
    ----------
    estimator : TSimCNE
        The estimator being trained; usable after the run ends, stopped or not.
    snapshots : list of Snapshot
        The most recent snapshots (at most ``max_snapshots``).
    errors : list of Exception
        Exceptions raised by event callbacks (they are also warned about).
    labels : ndarray or None
        Labels given to ``start``, for live views.
    snapshot_dir : Path or None
        The run directory written for watchers (see :mod:`tsimcne_widgets.run_dir`).
    """

    EVENTS = EVENTS

    def __init__(self, hooks: RunHooks, data, *, estimator=None, snapshot_every=0.5,
                 max_snapshots=200, snapshot_points=None, checkpoint_every=None,
                 checkpoint_dir=None, previous=None, snapshot_dir=None):
        super().__init__(max_snapshots=max_snapshots, worker_name="tsimcne-train")
        self.snapshot_dir = None if snapshot_dir is None else Path(snapshot_dir)
        self._run_dir: RunDirWriter | None = None  # opened by the training thread
        self.estimator = estimator
        self.data = data
        self.labels = data.labels
        self.class_names = data.class_names
        self.snapshot_every = snapshot_every
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self._hooks = hooks
        self._progress = Progress()
        self._resume = threading.Event()
        self._resume.set()
        self._pca = StablePCA()
        self._indices = None
        if snapshot_points is not None and snapshot_points < data.n_samples:
            rng = np.random.default_rng(hooks.seed)
            self._indices = np.sort(rng.choice(data.n_samples, snapshot_points, replace=False))
        # A resumed run carries on its predecessor's story: the snapshot history, the
        # preview's orientation and the time trained so far.
        self._elapsed_before = 0.0
        if previous is not None:
            self._snapshots.extend(previous.snapshots)
            self._elapsed_before = previous.progress.elapsed
            last = self._snapshots[-1] if self._snapshots else None
            same_points = last is not None and (
                (last.indices is None and self._indices is None)
                or (last.indices is not None and self._indices is not None
                    and np.array_equal(last.indices, self._indices)))
            if same_points and last.kind == "preview":
                self._pca.reset(last.xy)

    # -- public API ---------------------------------------------------------------------
    @property
    def progress(self) -> Progress:
        """The latest :class:`Progress` record (safe to read from any thread)."""
        with self._lock:
            return self._progress

    @property
    def schedule(self) -> list:
        """The stages (:class:`Stage`), as currently planned (a time budget re-plans
        their epochs as training goes)."""
        return list(self._hooks.trainer.schedule)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch."""
        return self._hooks.trainer.steps_per_epoch

    def on(self, event: str, callback: Callable) -> Callable:
        """Call ``callback(payload)`` on ``event``, off the training thread.

        Payloads: 'snapshot' a :class:`Snapshot`; 'epoch_end' and 'stage_change' a
        :class:`Progress`; 'finished' and 'stopped' the run; 'failed' the exception.
        A callback that raises is reported with a warning and kept in ``errors``.

        Returns
        -------
        callable
            ``callback``, to pass to :meth:`off` later.
        """
        return super().on(event, callback)

    def pause(self) -> None:
        """Pause at the next batch boundary."""
        with self._lock:
            if self._state == "running":
                self._resume.clear()

    def resume(self) -> None:
        """Continue a paused run."""
        self._resume.set()

    def stop(self) -> None:
        """Stop at the next batch boundary. Safe to call any number of times."""
        super().stop()
        self._resume.set()

    def wait(self, timeout: float | None = None):
        """Block until the run ends and return the estimator.

        Re-raises an exception from the training thread with its original traceback.
        Raises ``TimeoutError`` if ``timeout`` seconds pass first. A KeyboardInterrupt
        while waiting stops the run, then propagates. Inside a Jupyter kernel, widget
        messages are handled while waiting, so that Pause, Stop and selections work.
        """
        return super().wait(timeout)

    def __repr__(self) -> str:
        p = self.progress
        return (f"<TrainingRun {self.state}: stage {p.stage}/{p.n_stages} epoch "
                f"{p.epoch}/{p.epochs_in_stage}, loss {p.loss:.4g}>")

    # -- internals ------------------------------------------------------------------------
    def _result(self):
        return self.estimator

    def _set_state_locked(self, state: str) -> None:
        self._state = state
        self._progress = replace(self._progress, state=state)

    def _start(self) -> TrainingRun:
        # On the caller's thread: a data mismatch raises here, and the schedule size is
        # known before anyone looks at the progress.
        tr = self._hooks.trainer
        tr.set_images(self.data.images)
        self._update_progress(None, time.perf_counter(), 0.0)
        _LIVE_RUNS.add(self)
        self._set_state("running")
        if tr.device.type == "cpu":
            # else the training thread's CPU thread pool runs throttled (see _openmp)
            release_caller_workers()
        self._launch()
        return self

    def _update_progress(self, info, t_start, rate) -> None:
        tr = self._hooks.trainer
        sched = tr.schedule
        st_idx = min(tr.stage, len(sched) - 1)
        st = sched[st_idx]
        left = tr.total_steps - tr.steps_done
        steps_per_s = rate / (2 * tr.batch_size) if rate else 0.0
        in_stage = tr.epoch * tr.steps_per_epoch + tr.step_in_epoch if not tr.done else (
            st.epochs * tr.steps_per_epoch)
        elapsed = self._elapsed_before + time.perf_counter() - t_start
        eta = left / steps_per_s if steps_per_s else float("nan")
        budget = tr.budget
        if budget is not None:
            # Counts down to the budget; a plan that cannot fit (each stage keeps an epoch)
            # shows its own estimate rather than 0 while it runs over.
            elapsed = budget.elapsed
            eta = 0.0 if tr.done else max(budget.remaining, 0.0 if math.isnan(eta) else eta)
        with self._lock:
            self._progress = Progress(
                state=self._state, stage=st_idx + 1, n_stages=len(sched), stage_name=st.name,
                epoch=min(tr.epoch + 1, st.epochs) if not tr.done else st.epochs,
                epochs_in_stage=st.epochs, step_in_stage=in_stage,
                steps_in_stage=st.epochs * tr.steps_per_epoch, steps_done=tr.steps_done,
                total_steps=tr.total_steps,
                loss=info.loss if info is not None else self._progress.loss,
                lr=info.lr if info is not None else tr.current_lr(),
                elapsed=elapsed, eta=eta, views_per_s=rate,
                time_budget=None if budget is None else budget.seconds,
                precision=self._hooks.precision,
                threads=0 if tr.thread_control is None else tr.thread_control.threads,
                compiling=tr.will_compile, compile_seconds=tr.compile_seconds,
            )

    def _snapshot(self, stage_idx: int, epoch: int, loss: float) -> None:
        images = self._train_images()
        if self._indices is not None:
            images = images[torch.from_numpy(self._indices).to(images.device)]
        Z = self._hooks.embed(images)
        if Z.shape[1] == 2:
            kind, xy = "embedding", Z
            self._pca.reset()
        else:
            kind, xy = "preview", self._pca(Z)
        snap = Snapshot(np.ascontiguousarray(xy, dtype=np.float32), stage_idx + 1, epoch,
                        self._hooks.trainer.steps_done, float(loss), kind, self._indices)
        self._add_snapshot(snap)
        self._to_run_dir("write_snapshot", snap)

    def _train_images(self) -> torch.Tensor:
        """The trainer's copy of the images, already on the training device (a GPU run
        then never re-uploads them for a snapshot)."""
        images = self._hooks.trainer.images
        return self.data.images if images is None else images

    def _checkpoint(self) -> None:
        if self.checkpoint_dir is not None:
            self._hooks.save(self.checkpoint_dir / "checkpoint.pt")

    # -- the run directory of snapshot_dir (see run_dir.py) ------------------------------
    def _open_run_dir(self) -> None:
        tr = self._hooks.trainer
        try:
            # A run with steps done continues from a checkpoint: it appends to the index.
            self._run_dir = RunDirWriter(self.snapshot_dir, resume=tr.steps_done > 0,
                                         step=tr.steps_done)
        except Exception as exc:  # noqa: BLE001 - reported; training goes on
            self._run_dir_failed(exc)
            return
        self._to_run_dir(
            "write_meta", n_samples=self.data.n_samples, schedule=tr.schedule,
            steps_per_epoch=tr.steps_per_epoch, batch_size=tr.batch_size,
            precision=self._hooks.precision,
            n_points=None if self._indices is None else len(self._indices),
            image_shape=list(self.data.image_shape), n_channels=self.data.n_channels)

    def _to_run_dir(self, method: str, *args, **kwargs):
        """Call the run directory writer's ``method``. An error stops the writing (it is
        warned about and kept in ``errors``), never the training."""
        writer = self._run_dir
        if writer is None:
            return None
        try:
            return getattr(writer, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported; training goes on
            self._run_dir = None
            try:
                writer.close()
            except OSError:
                pass
            self._run_dir_failed(exc)
            return None

    def _run_dir_failed(self, exc: Exception) -> None:
        self.errors.append(exc)
        warnings.warn(f"snapshot_dir {str(self.snapshot_dir)!r}: writing stopped after "
                      f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)

    def _poll_control(self) -> None:
        """Obey a new command of a watcher in the run directory's ``control.json``."""
        command = self._to_run_dir("poll_control")
        if command == "pause":
            self.pause()
        elif command == "resume":
            self.resume()
        elif command == "stop":
            self.stop()

    # -- pause and stop, shared by all processes of a distributed run --------------------
    def _anywhere(self, *flags: bool) -> tuple[bool, ...]:
        """Each of ``flags`` here, or on any process of a distributed run (one collective
        for all): all processes pause and stop together (one that stopped alone would
        leave the others waiting in the next collective). Rank 0 alone reads
        control.json."""
        tr = self._hooks.trainer
        return flags if tr.dist is None else tr.dist.any(*flags, device=tr.device)

    def _wait_resumed(self) -> None:
        """Block while paused. A paused run still reads control.json, for 'resume' and
        'stop'; the processes of a distributed run wait until none is paused."""
        tr = self._hooks.trainer
        if tr.dist is None:
            while not self._resume.wait(None if self._run_dir is None else 0.5):
                self._poll_control()
            return
        while True:
            self._resume.wait(0.5)
            self._poll_control()
            (waiting,) = self._anywhere(not self._resume.is_set() and not self._stop.is_set())
            if not waiting:
                return

    def _work(self) -> None:
        hooks = self._hooks
        tr = hooks.trainer
        t_start = time.perf_counter()
        last_snap = time.perf_counter()
        snap_cost = 0.0
        rate = 0.0
        window_s, window_steps = 0.0, 0
        outcome = "finished"
        try:
            if self.snapshot_dir is not None:
                self._open_run_dir()
            self._update_progress(None, t_start, rate)
            self._to_run_dir("write_progress", self.progress, force=True)
            # The starting picture: the initial state, or where a resumed run stands.
            self._snapshot(min(tr.stage, len(tr.schedule) - 1), tr.epoch, float("nan"))
            while not tr.done:
                self._poll_control()
                paused, stopping = self._anywhere(not self._resume.is_set(),
                                                  self._stop.is_set())
                if stopping:
                    self._stop.set()
                    outcome = "stopped"
                    break
                if paused:
                    tr.pause_clock()  # paused time does not use up a time budget
                    self._set_state("paused")
                    self._to_run_dir("write_progress", self.progress, force=True)
                    paused_at = time.perf_counter()
                    self._wait_resumed()
                    t_start += time.perf_counter() - paused_at
                    with self._lock:
                        if self._state == "paused":
                            self._set_state_locked("running")
                    self._to_run_dir("write_progress", self.progress, force=True)
                    continue  # a stop may have come while paused
                compiles = tr.will_compile
                if compiles:  # say so before a step that may take minutes
                    self._update_progress(None, t_start, rate)
                    self._to_run_dir("write_progress", self.progress, force=True)
                t0 = time.perf_counter()
                info = tr.step()
                window_s += time.perf_counter() - t0
                window_steps += 1
                if compiles:  # not training speed
                    window_s, window_steps = 0.0, 0
                elif info.synced:  # an accelerator's steps only end, timed, at a sync
                    views = 2 * tr.batch_size * window_steps / window_s
                    rate = views if rate == 0 else 0.9 * rate + 0.1 * views
                    window_s, window_steps = 0.0, 0
                hooks.on_step(info)
                self._update_progress(info, t_start, rate)
                self._to_run_dir("write_progress", self.progress)  # at most about 1/s
                if info.epoch_end:
                    self._emit("epoch_end", self.progress)
                    self._to_run_dir("write_epoch", {
                        "stage": info.stage + 1, "stage_name": tr.schedule[info.stage].name,
                        "epoch": info.epoch + 1, "loss": info.epoch_loss, "lr": info.lr,
                        "seconds": info.epoch_seconds, "step": tr.steps_done})
                    if self.checkpoint_every and (info.epoch + 1) % self.checkpoint_every == 0:
                        self._checkpoint()
                # Snapshots: at every stage end, and every `snapshot_every` seconds while
                # keeping their cost under about 7% of the training time (the mandatory
                # start and stage-end frames come on top).
                now = time.perf_counter()
                due = self.snapshot_every == "epoch" and info.epoch_end
                if isinstance(self.snapshot_every, (int, float)) and self.snapshot_every > 0:
                    due = now - last_snap >= max(self.snapshot_every, 14 * snap_cost)
                if info.stage_end or due:
                    self._snapshot(info.stage, info.epoch + 1, tr.epoch_mean_loss)
                    snap_cost = time.perf_counter() - now
                    last_snap = time.perf_counter()
                if info.stage_end and not tr.done:
                    self._emit("stage_change", self.progress)
            if outcome == "finished":
                hooks.on_finish(hooks.embed(self._train_images()))
        except BaseException as exc:  # noqa: BLE001 - handed to wait() and 'failed'
            outcome = "failed"
            self._exc = exc
            if isinstance(exc, NonFiniteLossError):
                try:
                    self._checkpoint()  # the weights are still the last good ones
                except Exception as ckpt_exc:  # noqa: BLE001
                    self.errors.append(ckpt_exc)
        finally:
            tr.pause_clock()
            if outcome == "stopped" and self.checkpoint_dir is not None:
                try:
                    self._checkpoint()
                except Exception as ckpt_exc:  # noqa: BLE001
                    self.errors.append(ckpt_exc)
            self._set_state(outcome)
            self._update_progress(None, t_start, rate)
            self._to_run_dir("write_progress", self.progress, force=True)
            self._to_run_dir("write_end", outcome, self._exc)
            self._finish(outcome)
            _LIVE_RUNS.discard(self)


def check_start_options(snapshot_every, max_snapshots, snapshot_points, checkpoint_every,
                        checkpoint_dir, snapshot_dir=None) -> None:
    """Validate the run options of :meth:`TSimCNE.start`, before any work."""
    if snapshot_dir is not None:
        if not isinstance(snapshot_dir, (str, os.PathLike)):
            raise TypeError(f"snapshot_dir must be None, a str or a Path, got "
                            f"{type(snapshot_dir).__name__}.")
        if Path(snapshot_dir).exists() and not Path(snapshot_dir).is_dir():
            raise ValueError(f"snapshot_dir must be a directory, but {str(snapshot_dir)!r} "
                             "is a file.")
    if not (snapshot_every in (None, "epoch") or (
            isinstance(snapshot_every, numbers.Real) and snapshot_every >= 0)):
        raise ValueError(
            f"snapshot_every must be seconds >= 0, 'epoch' or None, got {snapshot_every!r}."
        )
    if not (isinstance(max_snapshots, numbers.Integral) and max_snapshots >= 1):
        raise ValueError(f"max_snapshots must be an int >= 1, got {max_snapshots!r}.")
    if snapshot_points is not None and not (
            isinstance(snapshot_points, numbers.Integral) and snapshot_points >= 2):
        raise ValueError(f"snapshot_points must be None or an int >= 2, got "
                         f"{snapshot_points!r}.")
    if checkpoint_every is not None:
        if not (isinstance(checkpoint_every, numbers.Integral) and checkpoint_every >= 1):
            raise ValueError(f"checkpoint_every must be an int >= 1 (epochs), got "
                             f"{checkpoint_every!r}.")
        if checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir, the folder to write to.")


def start_run(hooks: RunHooks, data, **kwargs) -> TrainingRun:
    """Create a :class:`TrainingRun` and start its threads; see :meth:`TSimCNE.start`."""
    run = TrainingRun(hooks, data, **kwargs)
    return run._start()


@atexit.register
def stop_all_runs() -> None:
    """Stop live runs and give them a moment to end cleanly (at interpreter exit; again
    before a process group is destroyed, :mod:`tsimcne_widgets.distributed`)."""
    runs = list(_LIVE_RUNS)
    for run in runs:
        run.stop()
    for run in runs:
        run._done.wait(5)
    # Also let threads of runs that have just ended return: a daemon thread still inside
    # torch while the interpreter finalises can abort the process ("terminate called ...").
    for t in threading.enumerate():
        if t.name in ("tsimcne-train", "tsimcne-events") and t is not threading.current_thread():
            t.join(5)
