"""mixed_precision='auto': the choice of precision and memory layout by measurement, on a
fake clock."""

import numpy as np
import pytest
import torch

from tsimcne_widgets import TSimCNE, _device
from tsimcne_widgets import _setup as builder
from tsimcne_widgets._device import measure_speed

ALL = [(False, True), (True, True), (False, False), (True, False)]


class FakeClock:
    """Each step advances the clock by its setting's cost per view times the views."""

    def __init__(self, cost, warmup_extra=0.0):
        self.t = 0.0
        self.cost = cost
        self.warmup_extra = warmup_extra
        self.calls = []

    def __call__(self):
        return self.t

    def step(self, bf16, channels_last, n):
        setting = (bf16, channels_last)
        first = setting not in [c for c, _ in self.calls]
        self.calls.append((setting, n))
        self.t += self.cost[setting] * n + (self.warmup_extra if first else 0.0)


def costs(fp32, bf16, contiguous=1.0):
    """Seconds per view: channels_last as given, contiguous ``contiguous`` times that."""
    return {(False, True): fp32, (True, True): bf16,
            (False, False): fp32 * contiguous, (True, False): bf16 * contiguous}


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(_device, "_PROBE_CACHE", {})


@pytest.mark.parametrize("cost, expected", [
    (costs(1e-3, 0.4e-3), (True, True)),   # bf16 2.5x faster (e.g. AMD Zen 4)
    (costs(1e-3, 1.3e-3), (False, True)),  # bf16 slower (e.g. a Xeon VM reporting bf16)
    # channels_last slower (the small CNN at 8x8 in fp32 on an AMX Xeon)
    (costs(1e-3, 1.3e-3, contiguous=0.83), (False, False)),
    (costs(1e-3, 0.4e-3, contiguous=0.9), (True, False)),
])
def test_picks_the_fastest_setting(cost, expected):
    clock = FakeClock(cost, warmup_extra=5.0)  # a slow first step must not decide
    choice, timings = measure_speed(clock.step, "k", 256, ALL, timer=clock)
    assert choice == expected
    n = timings["views"]
    assert timings["fp32/channels_last"] == pytest.approx(cost[False, True] * n)
    assert timings["bf16/channels_last"] == pytest.approx(cost[True, True] * n)
    assert timings["fp32/contiguous"] == pytest.approx(cost[False, False] * n)
    assert timings["bf16/contiguous"] == pytest.approx(cost[True, False] * n)
    assert {c for c, _ in clock.calls} == set(ALL)


@pytest.mark.parametrize("bf16_cost, expected", [
    (1e-3, (False, True)),      # a tie
    (0.97e-3, (False, True)),   # 3 % faster: within the noise, the first is kept
    (0.9e-3, (True, True)),     # 10 % faster
])
def test_near_ties_keep_the_earlier_candidate(bf16_cost, expected):
    clock = FakeClock(costs(1e-3, bf16_cost))
    assert measure_speed(clock.step, "tie", 64, ALL, timer=clock)[0] == expected


def test_a_setting_that_raises_drops_out():
    clock = FakeClock(costs(1e-3, 0.4e-3))

    def step(bf16, channels_last, n):
        if bf16:
            raise RuntimeError("no bf16 kernel for this op")
        clock.step(bf16, channels_last, n)

    choice, timings = measure_speed(step, "no-bf16", 64, ALL, timer=clock)
    assert choice == (False, True)
    assert set(timings) == {"views", "fp32/channels_last", "fp32/contiguous"}


def test_when_every_setting_raises_the_first_is_kept():
    def step(bf16, channels_last, n):
        raise RuntimeError("broken model")

    choice, timings = measure_speed(step, "broken", 64, ALL, timer=FakeClock(costs(1, 1)))
    assert choice == ALL[0] and set(timings) == {"views"}


def test_probe_is_cached_per_key():
    clock = FakeClock(costs(1e-3, 2e-3))
    first = measure_speed(clock.step, ("cpu", "fast", 32), 64, ALL, timer=clock)
    n_calls = len(clock.calls)
    assert measure_speed(clock.step, ("cpu", "fast", 32), 64, ALL, timer=clock) == first
    assert len(clock.calls) == n_calls  # nothing ran again
    measure_speed(clock.step, ("cpu", "fast", 64), 64, ALL, timer=clock)
    assert len(clock.calls) > n_calls  # another setting is measured


def test_slow_steps_shrink_the_probe_to_the_budget():
    clock = FakeClock(costs(0.05, 0.04))  # 3.2 s for a first 64-view step
    choice, timings = measure_speed(clock.step, "slow", 1024, ALL, timer=clock)
    assert choice == (True, True)
    assert timings["views"] < 64
    # warm-up at 64 views (3.2 s), then the shrunk probe stays near the 2 s budget
    assert clock.t - 0.05 * 64 <= _device.PROBE_SECONDS + 0.5


def test_fast_steps_grow_the_probe_up_to_the_training_batch():
    clock = FakeClock(costs(1e-6, 1e-6))  # 64 views in 64 us
    _, timings = measure_speed(clock.step, "fast", 512, ALL, timer=clock)
    assert timings["views"] == 512
    assert clock.calls[0][1] == 64  # the first step, which sizes the rest


def test_the_probe_uses_at_most_the_training_batch():
    clock = FakeClock(costs(1e-4, 1e-4))
    measure_speed(clock.step, "tiny", 10, ALL, timer=clock)
    assert max(n for _, n in clock.calls) == 10


FAST = {"backbone": "fast", "total_epochs": (1, 1, 1), "batch_size": 32, "device": "cpu",
        "random_state": 0, "n_threads": 1}


def _fake_measure(choice, seen):
    timings = {"views": 4, "fp32/channels_last": 1.0, "bf16/channels_last": 2.0,
               "fp32/contiguous": 3.0, "bf16/contiguous": 4.0}

    def fake(step, key, max_views, candidates):
        for c in candidates:
            step(*c, 4)  # the real probe step runs in every setting
        seen.append((key, max_views, list(candidates)))
        return choice, timings

    return fake, timings


def test_estimator_records_the_choice(small_digits, monkeypatch):
    X, _ = small_digits
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    seen = []
    fake, timings = _fake_measure((False, True), seen)
    monkeypatch.setattr(builder, "measure_speed", fake)
    est = TSimCNE(**FAST).fit(X)
    assert est.precision_ == "fp32" and est.amp_ is False
    assert est.memory_format_ == "channels_last"
    assert est.precision_timings_ == timings
    assert seen == [(("cpu", "fast", 1, (8, 8), 32), 64, ALL)]
    # Probing leaves the random streams alone: the same result as forcing fp32.
    forced = TSimCNE(**FAST, mixed_precision=False).fit(X)
    assert forced.precision_ == "fp32" and forced.precision_timings_ is None
    assert forced.memory_format_ == "channels_last"
    np.testing.assert_array_equal(est.embedding_, forced.embedding_)


def _conv_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_a_contiguous_choice_holds_through_training_and_inference(small_digits, monkeypatch):
    X, _ = small_digits
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    fake, _ = _fake_measure((False, False), [])
    monkeypatch.setattr(builder, "measure_speed", fake)
    est = TSimCNE(**FAST).fit(X)
    assert est.memory_format_ == "contiguous" and est.precision_ == "fp32"
    # Every stage re-configures the model; the chosen layout survives all three.
    # (A 1-channel or 1x1 kernel is both; only the others tell the layouts apart.)
    weights = [w for w in _conv_weights(est.model_) if w.shape[1] > 1 and w.shape[-1] > 1]
    assert weights and all(w.is_contiguous() for w in weights)
    assert not any(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    Z = est.transform(X[:50])
    assert Z.shape == (50, 2) and np.isfinite(Z).all()
    # The same training in channels_last agrees up to float summation order.
    other = TSimCNE(**FAST, mixed_precision=False).fit(X)
    assert other.memory_format_ == "channels_last"
    assert np.abs(est.embedding_ - other.embedding_).max() < 0.05 * np.abs(
        other.embedding_).max()


def test_forced_precision_is_not_measured(small_digits, monkeypatch):
    X, _ = small_digits

    def boom(*a, **kw):
        raise AssertionError("measured although forced")

    monkeypatch.setattr(builder, "measure_speed", boom)
    monkeypatch.setattr(_device, "bf16_supported", lambda device: True)
    assert TSimCNE(**FAST, mixed_precision=True).fit(X).precision_ == "bf16"
    assert TSimCNE(**FAST, mixed_precision=False).fit(X).precision_ == "fp32"


def test_cpu_without_bf16_is_fp32_without_timing(small_digits, monkeypatch):
    X, _ = small_digits
    monkeypatch.setattr(_device, "bf16_supported", lambda device: False)
    monkeypatch.setattr(builder, "measure_speed",
                        lambda *a, **kw: pytest.fail("measured without bf16"))
    est = TSimCNE(**FAST).fit(X)
    assert est.precision_ == "fp32" and est.precision_timings_ is None
    assert est.memory_format_ == "channels_last"


def test_progress_shows_the_precision(small_digits):
    X, _ = small_digits
    run = TSimCNE(**FAST, mixed_precision=False).start(X)
    run.wait(60)
    assert run.progress.precision == "fp32"
