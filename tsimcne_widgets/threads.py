"""How many CPU threads a training step uses: measured on the steps themselves.

On a busy machine (a browser showing the live view, other work on a laptop) torch's
OpenMP threads spin against cores they do not get: on 2 cores with one other CPU-bound
process, a small-CNN step ran 4.4x slower with 2 threads than with 1. The fastest count
depends on the machine and on what else runs, so :class:`ThreadTuner` times real training
steps at a few counts when training starts, keeps the fastest, and measures again from
time to time, sooner when the steps slow down. Probing costs a few steps at a worse
count; re-probes are spaced so that this stays within ``max_overhead`` of training time.

The count is set with ``torch.set_num_threads`` on the training thread. OpenMP keeps it
per thread, so a background run leaves the notebook's own count alone; ``fit`` puts the
caller's count back when it ends (:meth:`ThreadTuner.restore`).
"""

from __future__ import annotations

import math
import numbers
import os
import statistics
import time
from collections import deque
from collections.abc import Callable

import torch

__all__ = ["ThreadTuner", "available_cores", "check_n_threads", "thread_candidates"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_candidates(cores: int) -> list[int]:
    """Thread counts worth timing on ``cores`` cores: all of them up to 4, then 1, the
    powers of two, half, all but one and all."""
    if cores <= 4:
        return list(range(1, cores + 1))
    counts = {1, cores // 2, cores - 1, cores}
    counts.update(2 ** k for k in range(1, int(math.log2(cores)) + 1))
    return sorted(c for c in counts if 1 <= c <= cores)


def check_n_threads(n_threads) -> int | str:
    """Validate the estimator's ``n_threads``: 'auto' or a positive int."""
    if isinstance(n_threads, str) and n_threads == "auto":
        return "auto"
    if isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool) and (
            n_threads >= 1):
        return int(n_threads)
    raise ValueError(f"n_threads must be 'auto' or a positive int, got {n_threads!r}.")


class ThreadTuner:
    """Choose the thread count of training steps by timing them.

    Call :meth:`before_step` before each step (it sets the count for that step) and
    :meth:`after_step` with the step's duration. A probe runs ``probe_steps`` steps at
    each candidate count and keeps the fastest median; a count whose first step takes
    ``abort_ratio`` times the best median so far is dropped after that one step, so
    that a clearly worse count costs little. While training goes on at the winner,
    a new probe starts after ``reprobe_every`` seconds, stretched so that the slower
    counts tried cost at most ``max_overhead`` of the time, or at once when the median
    of the recent steps is ``slowdown`` times the winner's probe time (other work
    started on the machine).

    Parameters
    ----------
    candidates : sequence of int
        Thread counts to try, e.g. :func:`thread_candidates`.
    probe_steps : int, default=2
        Timed steps per candidate in a probe.
    abort_ratio : float, default=1.5
        A candidate this much slower than the best so far at its first step is dropped.
    reprobe_every : float, default=30.0
        Least seconds between probes.
    max_overhead : float, default=0.02
        Share of training time that probing may cost.
    slowdown : float, default=1.3
        Ratio of the recent median step time to the winner's that triggers a new probe.
    clock : callable, default=time.perf_counter
        Seconds; injected by tests.
    set_threads : callable, default=torch.set_num_threads
        Applies a thread count; injected by tests.
    get_threads : callable, default=torch.get_num_threads
        The calling thread's current count.

    Attributes
    ----------
    threads : int
        The count the steps use now (outside a probe: the last winner).
    timings : dict of int to float
        Median step seconds per count from the last probe.
    probes : int
        Probes completed.
    """

    def __init__(self, candidates, *, probe_steps: int = 2, abort_ratio: float = 1.5,
                 reprobe_every: float = 30.0,
                 max_overhead: float = 0.02, slowdown: float = 1.3,
                 clock: Callable[[], float] = time.perf_counter,
                 set_threads: Callable[[int], None] = torch.set_num_threads,
                 get_threads: Callable[[], int] = torch.get_num_threads):
        self.candidates = sorted({int(c) for c in candidates})
        if not self.candidates or self.candidates[0] < 1:
            raise ValueError(f"candidates must be positive ints, got {list(candidates)!r}.")
        self.probe_steps = probe_steps
        self.abort_ratio = abort_ratio
        self.reprobe_every = reprobe_every
        self.max_overhead = max_overhead
        self.slowdown = slowdown
        self._clock = clock
        self._set = set_threads
        self._get = get_threads
        self._original: int | None = None
        default = max(self.candidates)
        self.threads = default
        self.timings: dict[int, float] = {}
        self.probes = 0
        # One candidate: nothing to measure.
        self._queue: list[int] = [] if len(self.candidates) == 1 else (
            [default] + [c for c in reversed(self.candidates) if c != default])
        self._samples: list[float] = []
        self._recent: deque[float] = deque(maxlen=5)
        self._next_probe = math.inf
        self._last_cost = 0.0
        self._probe_cost = 0.0  # seconds and number of the current probe's steps
        self._probe_count = 0

    @property
    def probing(self) -> bool:
        """Whether the steps are being timed at the candidate counts now."""
        return bool(self._queue)

    def _current(self) -> int:
        return self._queue[0] if self._queue else self.threads

    def before_step(self) -> None:
        """Set the calling thread's count for the next step."""
        if self._original is None:
            self._original = self._get()
        want = self._current()
        if self._get() != want:
            self._set(want)

    def after_step(self, seconds: float) -> None:
        """Record how long the step took."""
        if self._queue:
            self._probe_cost += seconds
            self._probe_count += 1
            self._samples.append(seconds)
            best = min(self.timings.values(), default=math.inf)
            if len(self._samples) >= self.probe_steps or seconds > self.abort_ratio * best:
                self.timings[self._queue.pop(0)] = statistics.median(self._samples)
                self._samples = []
                if not self._queue:
                    self._finish_probe()
            return
        self._recent.append(seconds)
        now = self._clock()
        slow = (len(self._recent) == self._recent.maxlen and self.threads in self.timings
                and statistics.median(self._recent) > self.slowdown * self.timings[self.threads])
        if now >= self._next_probe or slow:
            self._start_probe()

    def _finish_probe(self) -> None:
        self.threads = min(self.timings, key=self.timings.get)
        best = self.timings[self.threads]
        # What the probe cost over running every probed step at the winner.
        self._last_cost = self._probe_cost - best * self._probe_count
        wait = max(self.reprobe_every, self._last_cost / self.max_overhead)
        self._next_probe = self._clock() + wait
        self._recent.clear()
        self.probes += 1

    def _start_probe(self) -> None:
        if len(self.candidates) == 1:
            return
        # The winner goes first: the steps continue at it while it is re-timed.
        self.timings = {}
        self._queue = [self.threads] + [c for c in reversed(self.candidates)
                                        if c != self.threads]
        self._samples = []
        self._probe_cost = 0.0
        self._probe_count = 0
        self._recent.clear()

    def restore(self) -> None:
        """Give the calling thread back the count it had before the first step."""
        if self._original is not None and self._get() != self._original:
            self._set(self._original)
        self._original = None


def thread_control(n_threads, device: torch.device):
    """The thread control of a trainer: None on a GPU (the CPU side is not the limit),
    else a :class:`ThreadTuner` over this machine's candidates, or over the one count
    given (which it then just sets, without timing anything)."""
    n = check_n_threads(n_threads)
    if device.type != "cpu":
        return None
    if n != "auto":
        return ThreadTuner([n])
    return ThreadTuner(thread_candidates(available_cores()))
