"""What every background run shares: state, bounded snapshot history, event callbacks."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable

from .snapshots import Snapshot


class RunBase:
    """Read-only views and callback registration over a run's lock-protected fields.

    Subclasses set ``EVENTS`` and create ``_lock``, ``_state``, ``_snapshots`` (a
    bounded deque), ``_callbacks`` (event -> list), ``_done`` (an Event), ``_exc`` and
    ``errors`` (a list).
    """

    EVENTS: tuple[str, ...] = ()

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
        return self._done.is_set()

    @property
    def exception(self) -> BaseException | None:
        """The exception that failed the run, or None."""
        return self._exc

    def on(self, event: str, callback: Callable):
        """Call ``callback(payload)`` on ``event``; returns the run for chaining."""
        if event not in self.EVENTS:
            raise ValueError(f"event must be one of {', '.join(self.EVENTS)}, got {event!r}.")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
        with self._lock:
            self._callbacks[event].append(callback)
        return self

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
