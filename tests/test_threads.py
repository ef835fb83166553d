"""The thread tuner's decisions, with an injected clock and step times (no wall clock)."""

import numpy as np
import pytest
import torch

from tsimcne_widgets import TSimCNE
from tsimcne_widgets.threads import (
    ThreadTuner,
    available_cores,
    check_n_threads,
    thread_candidates,
    thread_control,
)


class FakeMachine:
    """Step times per thread count; a clock that advances by each step."""

    def __init__(self, times):
        self.times = dict(times)
        self.now = 0.0
        self.count = max(self.times)
        self.trace = []

    def clock(self):
        return self.now

    def set(self, n):
        self.count = n

    def get(self):
        return self.count

    def tuner(self, **kwargs):
        return ThreadTuner(self.times, clock=self.clock, set_threads=self.set,
                           get_threads=self.get, **kwargs)

    def run(self, ctl, steps):
        total = 0.0
        for _ in range(steps):
            ctl.before_step()
            dt = self.times[self.count]
            self.now += dt
            total += dt
            self.trace.append(self.count)
            ctl.after_step(dt)
        return total


def test_candidates():
    assert thread_candidates(1) == [1]
    assert thread_candidates(2) == [1, 2]
    assert thread_candidates(4) == [1, 2, 3, 4]
    assert thread_candidates(16) == [1, 2, 4, 8, 15, 16]
    assert thread_candidates(6) == [1, 2, 3, 4, 5, 6]


def test_the_probe_keeps_the_fastest_count():
    m = FakeMachine({1: 0.1, 2: 0.3})  # a busy core: one thread wins
    t = m.tuner(probe_steps=3)
    assert t.probing
    m.run(t, 6)  # 3 steps at 2, then 3 at 1
    assert not t.probing and t.threads == 1 and t.probes == 1
    assert t.timings == {2: pytest.approx(0.3), 1: pytest.approx(0.1)}
    assert m.trace == [2] * 3 + [1] * 3
    m.run(t, 20)
    assert m.trace[6:] == [1] * 20


def test_a_clearly_slower_count_is_dropped_after_one_step():
    m = FakeMachine({1: 0.4, 2: 0.1})  # idle: one thread is much slower
    t = m.tuner(probe_steps=3)
    m.run(t, 4)
    assert m.trace == [2, 2, 2, 1] and t.threads == 2 and not t.probing


def test_it_measures_again_later_and_follows_the_machine():
    m = FakeMachine({1: 0.1, 2: 0.3})
    t = m.tuner(probe_steps=3, reprobe_every=30.0)
    m.run(t, 6)
    m.times = {1: 0.1, 2: 0.05}  # the other work ended: two threads are faster now
    m.run(t, 5)
    assert t.threads == 1  # nothing slowed down, and it is not time yet
    m.now += 60.0  # past 30 s, and past the probe's cost over max_overhead (0.6 / 0.02 s)
    m.run(t, 1 + 6)
    assert t.threads == 2 and t.probes == 2
    assert m.trace[-1] == 2


def test_a_slowdown_starts_a_probe_at_once():
    m = FakeMachine({1: 0.2, 2: 0.1})
    t = m.tuner(probe_steps=3, reprobe_every=1e9)
    m.run(t, 4)
    assert t.threads == 2
    m.times = {1: 0.2, 2: 0.9}  # another program takes a core
    m.run(t, 5 + 6)
    assert t.threads == 1 and t.probes == 2


def test_probes_are_spaced_to_bound_their_cost():
    m = FakeMachine({1: 1.0, 2: 10.0})  # a slow candidate makes each probe expensive
    t = m.tuner(probe_steps=3, reprobe_every=1.0, max_overhead=0.02)
    m.run(t, 10000)
    wasted = sum(9.0 for c in m.trace if c == 2)
    assert wasted / m.now <= 0.025  # 2% after the first probe, which must be paid
    assert t.probes >= 2  # and it still looks again


def test_adaptive_throughput_is_close_to_the_best_fixed_count():
    # A step mix like 2 cores with one busy: 1 thread 780 views/s, 2 threads 176.
    busy = {1: 256 / 780, 2: 256 / 176}
    m = FakeMachine(busy)
    adaptive = m.run(m.tuner(), 3000)
    best_fixed = 3000 * min(busy.values())
    assert best_fixed / adaptive >= 0.9
    idle = {1: 256 / 1200, 2: 256 / 2307}
    m = FakeMachine(idle)
    adaptive = m.run(m.tuner(), 20000)
    assert 20000 * min(idle.values()) / adaptive >= 0.97


def test_restore_and_fixed_counts():
    m = FakeMachine({1: 0.1, 2: 0.3})
    t = m.tuner()
    m.run(t, 4)
    assert m.count == 1
    t.restore()
    assert m.count == 2
    f = ThreadTuner([1], set_threads=m.set, get_threads=m.get)  # n_threads=1
    m.run(f, 3)
    assert m.trace[-3:] == [1, 1, 1] and not f.probing
    f.restore()
    assert m.count == 2
    assert ThreadTuner([3]).probing is False  # one candidate: nothing to time


def test_check_n_threads():
    assert check_n_threads("auto") == "auto" and check_n_threads(3) == 3
    for bad in (0, -1, 1.5, True, "all", None):
        with pytest.raises(ValueError, match="n_threads must be 'auto' or a positive int"):
            check_n_threads(bad)
    assert thread_control("auto", torch.device("cuda")) is None
    fixed = thread_control(2, torch.device("cpu"))
    assert fixed.candidates == [2] and fixed.threads == 2 and not fixed.probing


def _images():
    return np.random.default_rng(0).integers(0, 255, (64, 8, 8), dtype=np.uint8)


PARAMS = {"backbone": "small", "total_epochs": (2, 1, 1), "batch_size": 16,
          "random_state": 0, "mixed_precision": False, "device": "cpu", "verbose": False}


def test_estimator_threads_are_recorded_and_the_callers_count_comes_back():
    before = torch.get_num_threads()
    est = TSimCNE(**PARAMS, n_threads=1).fit(_images())
    assert est.n_threads_ == 1 and est.thread_timings_ == {}
    assert torch.get_num_threads() == before
    auto = TSimCNE(**PARAMS).fit(_images())
    assert auto.n_threads_ in thread_candidates(available_cores())
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        TSimCNE(**PARAMS, n_threads=0).fit(_images())


def test_a_background_run_reports_its_threads():
    est = TSimCNE(**PARAMS, n_threads=1)
    run = est.start(_images(), snapshot_every="epoch")
    run.wait(60)
    assert run.progress.threads == 1 and est.n_threads_ == 1
    from tsimcne_widgets.monitor import _details_html

    assert "1 thread" in _details_html(run.progress, "finished")
