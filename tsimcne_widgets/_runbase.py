"""What every background run shares: state, a worker thread, bounded snapshot history,
events dispatched off the worker thread, ``wait`` and error reporting."""

from __future__ import annotations

import queue
import threading
import traceback
import warnings
from collections import deque
from collections.abc import Callable

from ._callbacks import register
from ._kernel_poll import wait_event
from .snapshots import Snapshot


class RunBase:
    """The run contract shared by :class:`TrainingRun` and :class:`BaselineRun`.

    The work happens on a worker thread (``_work``, given by the subclass); it reports
    through lock-protected fields and events. Event callbacks run on a separate
    dispatcher thread, in order, so that a slow or failing callback never stalls the
    work. The worker ends with :meth:`_finish`, which sets the final state, emits the
    outcome's event and marks the run done; :meth:`wait` returns once the worker has
    ended and the callbacks queued so far have run.

    Parameters
    ----------
    max_snapshots : int
        How many recent snapshots ``snapshots`` keeps.
    worker_name : str
        Name of the worker thread.
    state : str, default='idle'
        The initial state.
    """

    EVENTS: tuple[str, ...] = ()

    def __init__(self, *, max_snapshots: int, worker_name: str, state: str = "idle"):
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._state = state
        self._stop = threading.Event()
        self._done = threading.Event()
        self._exc: BaseException | None = None
        self._snapshots: deque[Snapshot] = deque(maxlen=max_snapshots)
        self._callbacks: dict[str, list[Callable]] = {e: [] for e in self.EVENTS}
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name=worker_name, daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="tsimcne-events",
                                            daemon=True)

    # -- public API ---------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def snapshots(self) -> list[Snapshot]:
        """The most recent snapshots, oldest first."""
        with self._lock:
            return list(self._snapshots)

    @property
    def latest(self) -> Snapshot | None:
        """The newest snapshot, or None."""
        with self._lock:
            return self._snapshots[-1] if self._snapshots else None

    @property
    def done(self) -> bool:
        """Whether the worker has ended (callbacks may still be running)."""
        return self._done.is_set()

    @property
    def exception(self) -> BaseException | None:
        """The exception that failed the run, or None."""
        return self._exc

    def on(self, event: str, callback: Callable) -> Callable:
        """Call ``callback(payload)`` on ``event``, on the run's dispatcher thread.

        A callback is registered once; one that raises is reported with a warning and
        kept in ``errors``.

        Parameters
        ----------
        event : str
            One of the run's ``EVENTS``.
        callback : callable
            Called with the event's payload.

        Returns
        -------
        callable
            ``callback``, to pass to :meth:`off` later.
        """
        return register(self._callbacks_for(event), callback, lock=self._lock)

    def off(self, event: str, callback: Callable) -> None:
        """Stop calling ``callback`` on ``event``; a callback not registered is ignored."""
        register(self._callbacks_for(event), callback, remove=True, lock=self._lock)

    def stop(self) -> None:
        """Ask the worker to stop at its next opportunity. Safe to call any number of times."""
        with self._lock:
            if self._state in ("running", "paused"):
                self._set_state_locked("stopping")
        self._stop.set()

    def wait(self, timeout: float | None = None):
        """Block until the run ends, then return its result.

        Re-raises an exception from the worker thread with its original traceback.
        Raises ``TimeoutError`` if ``timeout`` seconds pass first. A KeyboardInterrupt
        while waiting stops the run, then propagates. Inside a Jupyter kernel, widget
        messages are handled while waiting, so that Pause, Stop and selections work.
        Callbacks of events emitted before the end have run when it returns.
        """
        try:
            finished = wait_event(self._done, timeout)
        except KeyboardInterrupt:
            self.stop()
            self._done.wait(10)
            raise
        if not finished:
            raise TimeoutError(f"{self._name()} is still {self.state} after {timeout} s")
        # A callback may call wait() itself: the dispatcher cannot join itself.
        if self._dispatcher.ident is not None and (
                threading.current_thread() is not self._dispatcher):
            self._dispatcher.join(timeout=10)
        if self._exc is not None:
            raise self._exc.with_traceback(self._exc.__traceback__)
        return self._result()

    # -- for subclasses -----------------------------------------------------------------
    def _work(self) -> None:
        """The worker thread's body; must end by calling :meth:`_finish`."""
        raise NotImplementedError

    def _result(self):
        """What :meth:`wait` returns."""
        return self

    def _name(self) -> str:
        return "the run"

    def _set_state_locked(self, state: str) -> None:
        self._state = state

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._set_state_locked(state)

    def _launch(self) -> None:
        self._dispatcher.start()
        self._worker.start()

    def _add_snapshot(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshots.append(snap)
        self._emit("snapshot", snap)

    def _emit(self, event: str, payload) -> None:
        """Queue ``event`` for the dispatcher; returns at once."""
        self._events.put((event, payload))

    def _finish(self, outcome: str) -> None:
        """Final state, the outcome's event (payload: the exception for 'failed', else
        the run), then done."""
        self._set_state(outcome)
        self._emit(outcome, self._exc if outcome == "failed" else self)
        self._events.put(None)
        self._done.set()

    def _callbacks_for(self, event: str) -> list[Callable]:
        if event not in self.EVENTS:
            raise ValueError(f"event must be one of {', '.join(self.EVENTS)}, got {event!r}.")
        return self._callbacks[event]

    def _dispatch(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            self._call_callbacks(*item)

    def _call_callbacks(self, event: str, payload) -> None:
        """Run ``event``'s callbacks; one that raises is kept in ``errors`` and warned about,
        so a broken callback neither stops the run nor vanishes."""
        with self._lock:
            callbacks = list(self._callbacks[event])
        for cb in callbacks:
            try:
                cb(payload)
            except Exception as exc:  # noqa: BLE001 - reported, never swallowed
                self.errors.append(exc)
                warnings.warn(
                    f"a {event!r} callback {getattr(cb, '__name__', cb)!r} raised "
                    f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                    RuntimeWarning, stacklevel=1,
                )


def check_not_running(run) -> None:
    """Refuse to fit or start an estimator whose latest ``run`` is still training."""
    if run is not None and not run.done:
        raise RuntimeError(
            f"This estimator is already training ({run!r}); call run.stop() or "
            "run.wait() before starting or fitting again."
        )
