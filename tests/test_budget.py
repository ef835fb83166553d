"""Time budgets: parsing, planning and the Trainer following a plan, on a fake clock."""

import math
import types

import numpy as np
import pytest
import torch
from torch import nn

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets import budget as budget_module
from tsimcne_widgets.budget import MEASURE_STEPS, TimeBudget, parse_duration, plan_epochs
from tsimcne_widgets.losses import get_loss
from tsimcne_widgets.models import TSimCNEModel
from tsimcne_widgets.schedule import make_schedule
from tsimcne_widgets.trainer import Trainer


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.mark.parametrize("value, seconds", [
    (45, 45.0), (2.5, 2.5), ("90s", 90.0), ("10min", 600.0), ("10 min", 600.0),
    ("1.5h", 5400.0), ("1h 30min", 5400.0), ("1h30m", 5400.0), (" 2 minutes ", 120.0),
    ("30 seconds", 30.0),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), "", "min", "10",
                                   "10 parsecs", "10min extra", "-3s", "0s"])
def test_parse_duration_rejects_bad_values(value):
    with pytest.raises(ValueError, match="time_budget must be"):
        parse_duration(value)


@pytest.mark.parametrize("value", [None, True, [10], {"s": 1}])
def test_parse_duration_rejects_bad_types(value):
    with pytest.raises(TypeError, match="time_budget must be"):
        parse_duration(value)


def _seconds(plan, rates, spe, stage=0, steps_done=0):
    return sum(e * spe * r for e, r in zip(plan[stage:], rates[stage:], strict=True)) - (
        steps_done * rates[stage])


def test_plan_fits_the_budget_in_the_proportions():
    rates = (1.0, 0.4, 1.0)
    plan = plan_epochs(100.0, (10, 2, 6), rates, 1, 0, 1, 0, (10, 2, 6))
    assert plan == [59, 11, 35]  # lam = 100 / (10 + 0.8 + 6) = 5.95, rounded down
    assert _seconds(plan, rates, 1) <= 100.0
    # With more steps per epoch, proportionally fewer epochs.
    plan = plan_epochs(100.0, (10, 2, 6), rates, 5, 0, 1, 0, (10, 2, 6))
    assert plan == [11, 2, 7] and _seconds(plan, rates, 5) <= 100.0


def test_plan_keeps_finished_stages_and_work_done():
    # In stage 2 after 3 of its steps: stage 1 stays as it ran.
    plan = plan_epochs(50.0, (10, 2, 6), (1.0, 0.5, 1.0), 2, 1, 2, 3, (40, 8, 24))
    assert plan[0] == 40
    assert _seconds(plan, (1.0, 0.5, 1.0), 2, stage=1, steps_done=3) <= 50.0
    assert plan[1] >= 2


def test_plan_too_short_keeps_one_epoch_per_stage_and_the_epochs_begun():
    assert plan_epochs(0.5, (10, 2, 6), (1.0, 1.0, 1.0), 10, 0, 1, 0, (10, 2, 6)) == [1, 1, 1]
    assert plan_epochs(0.0, (10, 2, 6), (1.0, 1.0, 1.0), 10, 0, 4, 33, (10, 2, 6))[0] == 4


def test_budget_clock_excludes_paused_time_and_skips_setup_steps():
    clock = FakeClock()
    b = TimeBudget(100, (10, 2, 6), costs=(1, 0.4, 1), clock=clock)
    assert b.elapsed == 0 and b.remaining == 100
    b.resume()
    clock.t += 5.0  # first step: set-up, not timed
    b.step_done(0)
    for _ in range(MEASURE_STEPS - 1):
        clock.t += 2.0
        b.step_done(0)
    assert b.secs_per_step() is None  # still measuring
    clock.t += 2.0
    b.step_done(0)
    assert b.secs_per_step() == [2.0, 0.8, 2.0]  # stage 2 from the cost ratio
    used = b.elapsed
    b.pause()
    clock.t += 1000.0
    assert b.elapsed == used and b.remaining == 100 - used
    b.resume()
    clock.t += 7.0  # the first step after a pause is not timed either
    b.step_done(0)
    assert b.secs_per_step()[0] == 2.0
    assert b.elapsed == used + 7.0


class Tiny(nn.Module):
    feature_dim = 8

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))

    def forward(self, x):
        return self.net(x)


def _trainer(budget, n=64, batch_size=16):
    torch.manual_seed(0)
    schedule = make_schedule((10, 2, 6), 0.01, (2, 0, 2), 4, 2)
    model = TSimCNEModel(Tiny(), 8, 4, 1)
    gen = torch.Generator().manual_seed(0)
    tr = Trainer(model, schedule, batch_size, Augmentations(hflip=0), get_loss("euclidean"),
                 gen, torch.device("cpu"), False, budget=budget)
    tr.set_images(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8))
    return tr


def _drive(tr, clock, step_seconds, readout_seconds=None, max_steps=10_000):
    """Run to the end; each step 'takes' step_seconds on the fake clock."""
    taken = 0
    while not tr.done and taken < max_steps:
        stage = tr.stage
        clock.t += readout_seconds if (stage == 1 and readout_seconds) else step_seconds(taken)
        tr.step()
        taken += 1
    tr.pause_clock()
    return taken


def test_trainer_follows_the_budget_on_a_fake_clock():
    clock = FakeClock()
    budget = TimeBudget(120, (10, 2, 6), costs=(1, 0.4, 1), clock=clock)
    tr = _trainer(budget)  # 4 steps per epoch
    _drive(tr, clock, lambda i: 1.0, readout_seconds=0.4)
    epochs = [s.epochs for s in tr.schedule]
    # 4 s per full epoch and 1.6 s per readout epoch; planned at the end of the first
    # epoch, with 117 s left (the untimed set-up step's second is not counted) and 4 s
    # done: lam = 121 / 67.2 = 1.80, so (18, 3, 10) rounded down; the re-plans hand the
    # rounding slack to the last stage.
    assert epochs == [18, 3, 11]
    assert budget.used <= 120.0
    assert budget.used > 120.0 - 4 * 2  # within a couple of epochs' rounding of it
    # Warmups keep their share of each stage (2 of 10, 2 of 6), rounded up.
    assert [s.warmup_epochs for s in tr.schedule] == [4, 0, 4]


def test_trainer_replans_when_throughput_drifts():
    clock = FakeClock()
    budget = TimeBudget(120, (10, 2, 6), clock=clock)
    tr = _trainer(budget)
    # Steps get 3x slower after 20 steps (another process started).
    _drive(tr, clock, lambda i: 1.0 if i < 20 else 3.0)
    assert budget.used <= 120.0 + 4 * 3.0  # at most one epoch of drift before a re-plan
    first = TimeBudget(120, (10, 2, 6), clock=FakeClock())
    tr_steady = _trainer(first)
    _drive(tr_steady, first.clock, lambda i: 1.0)
    assert sum(s.epochs for s in tr.schedule) < sum(s.epochs for s in tr_steady.schedule)


def test_slow_first_steps_do_not_cut_the_first_stage_short():
    # 16 steps per epoch; the first 3 timed steps take 3 s (a browser starting beside the
    # kernel), the rest 0.5 s. The first plan, from those 3 steps alone, gives stage 1 a
    # single epoch; the stage's length is decided again on its whole first epoch.
    clock = FakeClock()
    budget = TimeBudget(120, (10, 2, 6), clock=clock)
    tr = _trainer(budget, n=128, batch_size=8)
    assert tr.steps_per_epoch == 16
    tr.step()  # set-up: not timed
    for _ in range(3):
        clock.t += 3.0
        tr.step()
    clock.t += 0.5
    tr.step()  # planned before it runs
    assert [s.epochs for s in tr.schedule][0] == 1  # the plan from the slow steps
    _drive(tr, clock, lambda i: 0.5)
    epochs = [s.epochs for s in tr.schedule]
    steady = TimeBudget(120, (10, 2, 6), clock=FakeClock())
    tr_steady = _trainer(steady, n=128, batch_size=8)
    _drive(tr_steady, steady.clock, lambda i: 0.5)
    steady_epochs = [s.epochs for s in tr_steady.schedule]
    assert epochs[0] >= 4 and epochs[0] >= steady_epochs[0] // 2
    assert budget.used <= 120.0


def test_work_once_per_epoch_is_planned_for_when_epochs_are_long():
    # 125 steps per epoch (more than the 64-step window), 0.1 s each, and 3 s of work
    # between epochs (a snapshot at every epoch end): an epoch really costs 15.5 s.
    clock = FakeClock()
    budget = TimeBudget(120, (10, 2, 6), clock=clock)
    tr = _trainer(budget, n=2000)
    assert tr.steps_per_epoch == 125
    first = True
    while not tr.done:
        if tr.step_in_epoch == 0 and not first:
            clock.t += 3.0
        first = False
        clock.t += 0.1
        tr.step()
    tr.pause_clock()
    assert budget.secs_per_step()[2] == pytest.approx((124 * 0.1 + 3.1) / 125)
    assert 120.0 - 2 * 15.5 < budget.used <= 120.0


def test_paused_time_does_not_count_and_state_round_trips():
    clock = FakeClock()
    budget = TimeBudget(60, (10, 2, 6), clock=clock)
    tr = _trainer(budget)
    for _ in range(10):
        clock.t += 1.0
        tr.step()
    tr.pause_clock()
    used = budget.elapsed
    clock.t += 500.0  # a long pause
    assert budget.elapsed == used
    state = tr.state_dict()
    # A new process: the same budget position and plan.
    clock2 = FakeClock()
    tr2 = _trainer(TimeBudget(60, (10, 2, 6), clock=clock2))
    tr2.load_state_dict(state)
    assert tr2.budget.elapsed == pytest.approx(used)
    assert [s.epochs for s in tr2.schedule] == [s.epochs for s in tr.schedule]
    assert tr2.steps_done == tr.steps_done and tr2.total_steps == tr.total_steps
    _drive(tr2, clock2, lambda i: 1.0)
    assert tr2.done and tr2.budget.used <= 60.0 + 1e-9


def test_estimator_time_budget_validation_and_fit(small_digits, monkeypatch):
    X, _ = small_digits
    # A clock that advances a fixed 50 ms per read, so that the plan (which follows the
    # step times) is the same on a busy CI machine as on an idle one.
    ticks = iter(range(10**9))
    monkeypatch.setattr(budget_module, "time",
                        types.SimpleNamespace(perf_counter=lambda: next(ticks) * 0.05))
    with pytest.raises(ValueError, match="time_budget must be"):
        TSimCNE(backbone="small", time_budget="ten minutes").fit(X)
    est = TSimCNE(backbone="small", time_budget="3s", total_epochs=(2, 1, 1), batch_size=32,
                  augmentations=Augmentations(hflip=0), random_state=0, device="cpu")
    assert est.get_params()["time_budget"] == "3s"
    est.fit(X)
    # The plan replaced the proportions' epochs, and history follows the plan.
    planned = [s.epochs for s in est.schedule_]
    assert len(est.history_) == sum(planned)
    assert planned == [8, 3, 4]  # fixed by the fake clock
    assert planned[0] >= planned[2] >= 1
    assert est.embedding_.shape == (120, 2) and np.isfinite(est.embedding_).all()


def test_estimator_budget_survives_save_and_load(small_digits, tmp_path):
    X, _ = small_digits
    est = TSimCNE(backbone="small", time_budget=3600, total_epochs=(2, 1, 1), batch_size=32,
                  augmentations=Augmentations(hflip=0), random_state=0, device="cpu")
    from tsimcne_widgets.data import as_images

    data = as_images(X)
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    for _ in range(MEASURE_STEPS + 2):
        tr.step()
    tr.pause_clock()
    est.save(tmp_path / "m.pt")
    loaded = TSimCNE.load(tmp_path / "m.pt")
    assert loaded.time_budget == 3600
    assert [s.epochs for s in loaded.schedule_] == [s.epochs for s in est.schedule_]
    assert math.isclose(loaded._trainer.budget.used, tr.budget.used)
