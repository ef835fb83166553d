"""mixed_precision='auto': the decision by measurement, on a fake clock."""

import numpy as np
import pytest

from tsimcne_widgets import TSimCNE, _device
from tsimcne_widgets import _setup as builder
from tsimcne_widgets._device import measure_precision


class FakeClock:
    """Each step advances the clock by its cost per view times the views."""

    def __init__(self, cost, warmup_extra=0.0):
        self.t = 0.0
        self.cost = cost
        self.warmup_extra = warmup_extra
        self.calls = []

    def __call__(self):
        return self.t

    def step(self, bf16, n):
        first = not any(b == bf16 for b, _ in self.calls)
        self.calls.append((bf16, n))
        self.t += self.cost[bf16] * n + (self.warmup_extra if first else 0.0)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(_device, "_PRECISION_CACHE", {})


@pytest.mark.parametrize("cost, expected", [
    ({False: 1e-3, True: 0.4e-3}, True),   # bf16 2.5x faster (e.g. AMD Zen 4)
    ({False: 1e-3, True: 1.3e-3}, False),  # bf16 slower (e.g. a Xeon VM reporting bf16)
])
def test_picks_the_faster_precision(cost, expected):
    clock = FakeClock(cost, warmup_extra=5.0)  # a slow first step must not decide
    use_bf16, timings = measure_precision(clock.step, "k", 256, timer=clock)
    assert use_bf16 is expected
    n = timings["views"]
    assert timings["fp32"] == pytest.approx(cost[False] * n)
    assert timings["bf16"] == pytest.approx(cost[True] * n)
    assert {b for b, _ in clock.calls} == {False, True}


def test_probe_is_cached_per_key():
    clock = FakeClock({False: 1e-3, True: 2e-3})
    first = measure_precision(clock.step, ("cpu", "fast", 32), 64, timer=clock)
    n_calls = len(clock.calls)
    assert measure_precision(clock.step, ("cpu", "fast", 32), 64, timer=clock) == first
    assert len(clock.calls) == n_calls  # nothing ran again
    measure_precision(clock.step, ("cpu", "fast", 64), 64, timer=clock)
    assert len(clock.calls) > n_calls  # another setting is measured


def test_slow_steps_shrink_the_probe_to_the_budget():
    clock = FakeClock({False: 0.05, True: 0.04})  # 3.2 s for a first 64-view step
    use_bf16, timings = measure_precision(clock.step, "slow", 1024, timer=clock)
    assert use_bf16 is True
    assert timings["views"] < 64
    # warm-up at 64 views (3.2 s), then the shrunk probe stays near the 2 s budget
    assert clock.t - 0.05 * 64 <= _device.PROBE_SECONDS + 0.5


def test_the_probe_uses_at_most_the_training_batch():
    clock = FakeClock({False: 1e-4, True: 1e-4})
    measure_precision(clock.step, "tiny", 10, timer=clock)
    assert max(n for _, n in clock.calls) == 10


FAST = {"backbone": "fast", "total_epochs": (1, 1, 1), "batch_size": 32, "device": "cpu",
        "random_state": 0, "n_threads": 1}


def test_estimator_records_the_choice(small_digits, monkeypatch):
    X, _ = small_digits
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    seen = []

    def fake_measure(step, key, max_views):
        step(False, 4)  # the real probe step runs in both precisions
        step(True, 4)
        seen.append((key, max_views))
        return False, {"views": 4, "fp32": 1.0, "bf16": 2.0}

    monkeypatch.setattr(builder, "measure_precision", fake_measure)
    est = TSimCNE(**FAST).fit(X)
    assert est.precision_ == "fp32" and est.amp_ is False
    assert est.precision_timings_ == {"views": 4, "fp32": 1.0, "bf16": 2.0}
    assert seen == [(("cpu", "fast", 1, (8, 8), 32), 64)]
    # Probing leaves the random streams alone: the same result as forcing fp32.
    forced = TSimCNE(**FAST, mixed_precision=False).fit(X)
    assert forced.precision_ == "fp32" and forced.precision_timings_ is None
    np.testing.assert_array_equal(est.embedding_, forced.embedding_)


def test_forced_precision_is_not_measured(small_digits, monkeypatch):
    X, _ = small_digits

    def boom(*a, **kw):
        raise AssertionError("measured although forced")

    monkeypatch.setattr(builder, "measure_precision", boom)
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    assert TSimCNE(**FAST, mixed_precision=True).fit(X).precision_ == "bf16"
    assert TSimCNE(**FAST, mixed_precision=False).fit(X).precision_ == "fp32"


def test_cpu_without_bf16_is_fp32_without_timing(small_digits, monkeypatch):
    X, _ = small_digits
    monkeypatch.setattr(_device, "bf16_supported", lambda device: False)
    monkeypatch.setattr(builder, "measure_precision",
                        lambda *a, **kw: pytest.fail("measured without bf16"))
    est = TSimCNE(**FAST).fit(X)
    assert est.precision_ == "fp32" and est.precision_timings_ is None


def test_progress_shows_the_precision(small_digits):
    X, _ = small_digits
    run = TSimCNE(**FAST, mixed_precision=False).start(X)
    run.wait(60)
    assert run.progress.precision == "fp32"
