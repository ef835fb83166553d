"""Flow control for streamed frames: at most one frame in flight, newest wins, rate cap.

Without this, a widget fed faster than the browser draws builds an
unbounded backlog in the Jupyter server and shows a picture many seconds old. Here a frame
is only sent once the browser has acknowledged the previous one (or the acknowledgement
timed out, e.g. because no view is open), and no faster than ``max_rate`` per second. A frame
submitted while waiting replaces the waiting one, so memory stays bounded by one frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class FrameThrottle:
    """Send the newest submitted payload when the previous frame is acknowledged.

    Parameters
    ----------
    send : callable
        ``send(payload, frame)`` puts one frame on the wire; called with the lock held, so
        frames never interleave.
    max_rate : float, default=20.0
        Most frames per second; ``0`` or ``inf`` means no cap.
    ack_timeout : float, default=2.0
        Seconds after which an unacknowledged frame counts as lost (no view open, view
        closed) and the next frame may go.
    clock, timer : callables
        Injected in tests: ``clock()`` gives seconds, ``timer(delay, fn)`` schedules ``fn``.
    """

    def __init__(self, send: Callable[[Any, int], None], *, max_rate: float = 20.0,
                 ack_timeout: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[float, Callable[[], None]], Any] | None = None,
                 first_frame: int = 0):
        self._send = send
        self.max_rate = max_rate
        self.ack_timeout = ack_timeout
        self._clock = clock
        self._timer_factory = timer or _daemon_timer
        self._lock = threading.RLock()
        self._pending: Any = None
        self._has_pending = False
        self.frame = first_frame  # last frame number sent
        self._in_flight: int | None = None
        self._sent_at = -float("inf")
        self._timer: Any = None
        self._timer_due = float("inf")
        self.stats = {"submitted": 0, "sent": 0, "dropped": 0, "acked": 0, "timeouts": 0}

    @property
    def in_flight(self) -> int | None:
        return self._in_flight

    @property
    def has_pending(self) -> bool:
        return self._has_pending

    def submit(self, payload: Any) -> None:
        """Queue `payload` as the newest frame (replacing any waiting one) and pump."""
        with self._lock:
            self.stats["submitted"] += 1
            if self._has_pending:
                self.stats["dropped"] += 1
            self._pending, self._has_pending = payload, True
            self.pump()

    def ack(self, frame: int) -> None:
        """The browser has drawn `frame`."""
        with self._lock:
            if self._in_flight is not None and frame >= self._in_flight:
                self._in_flight = None
                self.stats["acked"] += 1
            self.pump()

    def next_frame(self) -> int:
        """Reserve a frame number for a frame sent outside the throttle (a full reset)."""
        with self._lock:
            self.frame += 1
            self._in_flight = self.frame
            self._sent_at = self._clock()
            return self.frame

    def pump(self) -> None:
        """Send the waiting payload if the window and the rate cap allow; else schedule."""
        with self._lock:
            if not self._has_pending:
                return
            now = self._clock()
            due = now
            if self._in_flight is not None:
                if now - self._sent_at < self.ack_timeout:
                    self._schedule(self._sent_at + self.ack_timeout)  # in case the ack is lost
                    return
                self.stats["timeouts"] += 1
                self._in_flight = None
            if self.max_rate and self.max_rate != float("inf"):
                due = self._sent_at + 1.0 / self.max_rate
            if due > now:
                self._schedule(due)
                return
            payload, self._pending, self._has_pending = self._pending, None, False
            self.frame += 1
            self._in_flight = self.frame
            self._sent_at = now
            self.stats["sent"] += 1
            self._send(payload, self.frame)

    def _schedule(self, due: float) -> None:
        if self._timer is not None and self._timer_due <= due:
            return
        if self._timer is not None and hasattr(self._timer, "cancel"):
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._timer_factory(max(0.0, due - self._clock()), self._fire)

    def _fire(self) -> None:
        with self._lock:
            self._timer, self._timer_due = None, float("inf")
            self.pump()

    def close(self) -> None:
        with self._lock:
            if self._timer is not None and hasattr(self._timer, "cancel"):
                self._timer.cancel()
            self._timer, self._pending, self._has_pending = None, None, False


def _daemon_timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()
    return t
