"""Training for a time budget instead of a number of epochs.

``TimeBudget`` measures how long optimiser steps take (paused time excluded) and plans the
stages' epochs so that training ends within the budget, keeping the stages in the
proportions of ``total_epochs``. ``Trainer`` consults it before every step and re-plans at
every epoch end, before deciding whether the stage is over, so a change in throughput
(snapshots, a busy machine) moves the plan.
The clock is injected, so that planning is tested without sleeping.
"""

from __future__ import annotations

import math
import numbers
import re
import time
from collections import deque
from collections.abc import Callable, Sequence

__all__ = ["TimeBudget", "parse_duration", "plan_epochs"]

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)\s*")
# Steps timed before the first plan; the very first step of a stage (one-off set-up costs)
# is never timed.
MEASURE_STEPS = 3
# Until it has run, a stage that trains only the last layer is assumed to cost this share
# of a full step: the backbone's backward pass is skipped.
READOUT_COST = 0.4
# Steps averaged per stage: at least this many, and at least one epoch, so that work done
# once per epoch (a snapshot at every epoch end) is part of the expected step time.
_WINDOW = 64


def parse_duration(value, name: str = "time_budget") -> float:
    """Seconds from a number of seconds or a string such as ``"90s"``, ``"10min"``,
    ``"1.5h"`` or ``"1h 30min"``.

    Raises
    ------
    ValueError
        If ``value`` is not a positive finite number or such a string.
    """
    hint = ("a positive number of seconds or a string such as '90s', '10min', '1.5h' or "
            "'1h 30min'")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value > 0 and math.isfinite(value):
            return float(value)
        raise ValueError(f"{name} must be {hint}, got {value!r}.")
    if isinstance(value, str):
        text = value.strip().lower()
        pos, total = 0, 0.0
        while pos < len(text):
            m = _PART.match(text, pos)
            if m is None or m.group(2) not in _UNITS:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if text and pos == len(text) and total > 0:
            return total
        raise ValueError(f"{name} must be {hint}, got {value!r}.")
    raise TypeError(f"{name} must be {hint}, got {type(value).__name__}.")


def plan_epochs(remaining: float, proportions: Sequence[float], secs_per_step: Sequence[float],
                steps_per_epoch: int, stage: int, epochs_done: int, steps_done: int,
                planned: Sequence[int]) -> list[int]:
    """Epochs per stage so that the rest of training fits into ``remaining`` seconds.

    All stages keep the ratios of ``proportions``: a common scale ``lam`` is solved from
    ``remaining = (lam * p[stage] * S - done) * t[stage] + sum(lam * p[i] * S * t[i])``
    over the later stages, where ``S`` is ``steps_per_epoch``, ``t`` the seconds per step
    and ``done`` the steps already taken in the current stage. Epochs are rounded down so
    that training ends within the budget, but every stage keeps at least one epoch and the
    current stage at least the epochs already begun; when even that does not fit, the
    plan runs over the budget.

    Parameters
    ----------
    remaining : float
        Seconds left in the budget.
    proportions : sequence of float
        Relative stage lengths (``total_epochs``).
    secs_per_step : sequence of float
        Expected seconds per step of each stage.
    steps_per_epoch : int
    stage : int
        Index of the current stage; earlier stages keep their ``planned`` epochs.
    epochs_done, steps_done : int
        Epochs begun and steps taken in the current stage (``epochs_done`` counts the
        epoch in progress, so the current stage gets at least that many).
    planned : sequence of int
        The current plan, whose finished stages are kept.

    Returns
    -------
    list of int
    """
    plan = list(planned)
    rest = range(stage, len(plan))
    per_scale = sum(proportions[i] * steps_per_epoch * secs_per_step[i] for i in rest)
    lam = (max(remaining, 0.0) + steps_done * secs_per_step[stage]) / per_scale
    for i in rest:
        plan[i] = max(1, int(math.floor(lam * proportions[i] + 1e-9)))
    plan[stage] = max(plan[stage], epochs_done, 1)
    return plan


class TimeBudget:
    """A training time budget: the clock, per-stage step timings and the plan.

    Parameters
    ----------
    seconds : float
        The budget.
    proportions : sequence of int
        Relative stage lengths, normally ``total_epochs``.
    costs : sequence of float, optional
        Relative cost of a step in each stage, used until a stage has been timed;
        default 1 for every stage.
    clock : callable, optional
        Returns seconds; default ``time.perf_counter``. Injected in tests.

    Attributes
    ----------
    used : float
        Seconds counted so far (paused time excluded).
    """

    def __init__(self, seconds: float, proportions: Sequence[int],
                 costs: Sequence[float] | None = None,
                 clock: Callable[[], float] | None = None):
        self.seconds = float(seconds)
        self.proportions = [float(p) for p in proportions]
        self.costs = [1.0] * len(self.proportions) if costs is None else [float(c) for c in costs]
        self.clock = time.perf_counter if clock is None else clock
        self.used = 0.0
        self._since: float | None = None  # clock time when counting (re)started
        self._mark: float | None = None  # end of the last timed step
        self._timings = [deque(maxlen=_WINDOW) for _ in self.proportions]
        self._skip_next = True
        self._epoch_steps = 0  # steps per epoch, as of the last plan
        self.planned = False

    # -- the clock ----------------------------------------------------------------------
    def resume(self) -> None:
        """Count time from now (no-op while counting)."""
        if self._since is None:
            self._since = self._mark = self.clock()
            self._skip_next = True

    def pause(self) -> None:
        """Stop counting: time until the next ``resume`` is not part of the budget."""
        if self._since is not None:
            self.used += self.clock() - self._since
            self._since = self._mark = None

    @property
    def elapsed(self) -> float:
        """Budget seconds used, including the current stretch."""
        live = 0.0 if self._since is None else self.clock() - self._since
        return self.used + live

    @property
    def remaining(self) -> float:
        """Budget seconds left (never below 0)."""
        return max(0.0, self.seconds - self.elapsed)

    # -- timings ------------------------------------------------------------------------
    def new_stage(self) -> None:
        """The next step starts a stage: its set-up costs are not timed."""
        self._skip_next = True

    def step_done(self, stage: int) -> None:
        """Record the wall time since the previous step ended (snapshots and other work
        between steps included, so that the plan sees what a step really costs)."""
        now = self.clock()
        if self._mark is not None and not self._skip_next:
            self._timings[stage].append(now - self._mark)
        self._skip_next = False
        self._mark = now

    def secs_per_step(self) -> list[float] | None:
        """Expected seconds per step of every stage, or None before enough timings.

        A stage not yet run is estimated from a measured one, scaled by their relative
        ``costs``.
        """
        measured = [sum(t) / len(t) if t else None for t in self._timings]
        counts = [len(t) for t in self._timings]
        if max(counts) == 0 or (not self.planned and max(counts) < MEASURE_STEPS):
            return None
        ref = max(range(len(measured)), key=lambda i: counts[i])
        unit = measured[ref] / self.costs[ref]
        # A stage timed for less than an epoch has not yet paid its once-per-epoch work
        # (its first step, after the stage change, is not timed): until it has, it is
        # assumed to cost at least what the reference stage's timings imply.
        return [unit * c if m is None
                else max(m, unit * c) if i != ref and n < self._epoch_steps else m
                for i, (m, c, n) in enumerate(zip(measured, self.costs, counts, strict=True))]

    def plan(self, steps_per_epoch: int, stage: int, epochs_done: int, steps_done: int,
             planned: Sequence[int]) -> list[int] | None:
        """A new plan from the current timings, or None while still measuring."""
        self._epoch_steps = steps_per_epoch
        if steps_per_epoch > self._timings[0].maxlen:
            self._timings = [deque(t, maxlen=steps_per_epoch) for t in self._timings]
        rates = self.secs_per_step()
        if rates is None:
            return None
        self.planned = True
        return plan_epochs(self.remaining, self.proportions, rates, steps_per_epoch, stage,
                           epochs_done, steps_done, planned)

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"seconds": self.seconds, "used": self.elapsed, "planned": self.planned,
                "timings": [list(t) for t in self._timings]}

    def load_state_dict(self, state: dict) -> None:
        self.seconds = float(state["seconds"])
        self.used = float(state["used"])
        self.planned = bool(state["planned"])
        saved = [[float(v) for v in values] for values in state["timings"]]
        size = max([_WINDOW, *map(len, saved)])  # keep a window widened to an epoch
        self._timings = [deque(maxlen=size) for _ in self.proportions]
        for dq, values in zip(self._timings, saved, strict=False):
            dq.extend(values)
