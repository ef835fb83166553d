import math

import pytest

from tsimcne_widgets.schedule import lr_at, make_schedule


def test_default_schedule():
    s = make_schedule((1000, 50, 450), lr=0.06)
    assert [st.epochs for st in s] == [1000, 50, 450]
    assert [st.lr for st in s] == pytest.approx([0.06, 0.06, 0.06 / 1000])
    assert [st.warmup_epochs for st in s] == [10, 0, 10]
    assert [st.out_dim for st in s] == [128, 2, 2]
    assert [st.trains for st in s] == ["all", "last", "all"]


def test_single_int_is_one_stage_straight_to_2d():
    (st,) = make_schedule(7, lr=0.1)
    assert (st.epochs, st.out_dim, st.trains, st.warmup_epochs) == (7, 2, "all", 7)


def test_dof_applies_to_the_stages_that_train_the_map():
    s = make_schedule((3, 1, 2), lr=0.1, dof=0.5)
    assert [st.dof for st in s] == [1.0, 0.5, 0.5]  # stage 1 keeps the Cauchy kernel
    assert [st.dof for st in make_schedule((3, 1, 2), lr=0.1)] == [1.0, 1.0, 1.0]
    (st,) = make_schedule(4, lr=0.1, dof=0.3)
    assert st.dof == 0.3


def test_warmup_is_clamped_and_zero_epoch_stages_skipped():
    s = make_schedule((3, 0, 2), lr=0.1, warmup_epochs=(10, 0, 10))
    assert [st.epochs for st in s] == [3, 2]
    assert [st.warmup_epochs for st in s] == [3, 2]


def test_lr_curve_values():
    (st, *_) = make_schedule((10, 1, 1), lr=1.0, warmup_epochs=(2, 0, 0))
    spe = 5
    lrs = [lr_at(st, k, spe) for k in range(st.epochs * spe)]
    # Linear warmup over 10 steps, starting at lr/10, not 0.
    assert lrs[:10] == pytest.approx([(k + 1) / 10 for k in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    # Cosine annealing: half way through the remaining 40 steps the rate is lr/2.
    assert lrs[30] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] > 0 and lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)))


@pytest.mark.parametrize("epochs,warmup", [((1, 1, 1), (10, 0, 10)), (1, 10), ((2, 1, 3), 0)])
def test_no_step_at_zero_learning_rate(epochs, warmup):
    for st in make_schedule(epochs, lr=0.1, warmup_epochs=warmup):
        for spe in (1, 3):
            lrs = [lr_at(st, k, spe) for k in range(st.epochs * spe)]
            assert min(lrs) > 0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"total_epochs": (1, 2)}, ValueError, "tuple of 3 ints"),
        ({"total_epochs": (0, 0, 0)}, ValueError, "at least one epoch"),
        ({"total_epochs": (1, -1, 1)}, ValueError, "non-negative"),
        ({"total_epochs": "100"}, TypeError, "total_epochs must be an int"),
        ({"total_epochs": (1.5, 1, 1)}, TypeError, "only ints"),
        ({"warmup_epochs": (1, 2)}, ValueError, "warmup_epochs"),
        ({"lr": 0}, ValueError, "lr must be a positive"),
        ({"lr": float("nan")}, ValueError, "lr must be a positive"),
        ({"dof": 0}, ValueError, "dof must be a positive finite number"),
        ({"dof": float("inf")}, ValueError, "dof must be a positive finite number"),
        ({"dof": True}, ValueError, "dof must be a positive finite number"),
    ],
)
def test_schedule_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_schedule(**kwargs)
