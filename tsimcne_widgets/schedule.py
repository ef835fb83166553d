"""The staged t-SimCNE schedule: stages as data, and the per-step learning rate.

A stage says how many epochs it runs, its peak learning rate, its warmup, which
parameters train and the output dimension of the projection head. The schedule is a
list of stages, in the spirit of openTSNE's composable optimisation phases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Stage", "make_schedule", "lr_at"]

STAGE_NAMES = ("pretrain", "2D readout", "fine-tune")


@dataclass(frozen=True)
class Stage:
    """One stage of training.

    Attributes
    ----------
    epochs : int
        Number of epochs in this stage.
    lr : float
        Peak learning rate.
    warmup_epochs : int
        Linear warmup length, already clamped to ``epochs``.
    out_dim : int
        Output dimension of the projection head during this stage.
    trains : {'all', 'last'}
        'all' trains every parameter; 'last' trains only a freshly initialised last
        layer of the head and freezes everything else.
    name : str
        Human-readable stage name.
    dof : float
        Degrees of freedom of the Euclidean loss's kernel in this stage (1: Cauchy).
    """

    epochs: int
    lr: float
    warmup_epochs: int
    out_dim: int
    trains: str
    name: str
    dof: float = 1.0


def _as_int_tuple(value, name: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}.")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{name} must contain only ints, got {list(value)!r}.")
        return tuple(value)
    raise TypeError(f"{name} must be an int or a sequence of ints, got {type(value).__name__}.")


def make_schedule(
    total_epochs=(1000, 50, 450),
    lr: float = 0.06,
    warmup_epochs=(10, 0, 10),
    projection_dim: int = 128,
    out_dim: int = 2,
    dof: float = 1.0,
) -> list[Stage]:
    """Build the list of stages.

    Parameters
    ----------
    total_epochs : int or tuple of 3 ints, default=(1000, 50, 450)
        Epochs per stage. Three stages: (1) pretrain everything with a
        ``projection_dim`` output, (2) train only a new ``out_dim`` last layer,
        (3) fine-tune everything at ``lr / 1000``. A single int trains one stage,
        everything at once, directly with the ``out_dim`` output. Stages with 0
        epochs are skipped.
    lr : float or tuple of 3 floats, default=0.06
        Peak learning rate of stages 1 and 2; stage 3 uses ``lr / 1000``. A tuple
        gives each stage's peak rate explicitly (shorter schedules on small data often
        want a larger fine-tuning rate than ``lr / 1000``).
    warmup_epochs : int or tuple of 3 ints, default=(10, 0, 10)
        Linear warmup per stage, clamped to the stage length.
    projection_dim : int, default=128
        Output dimension during stage 1.
    out_dim : int, default=2
        Final output dimension.

    Returns
    -------
    list of Stage
    """
    epochs = _as_int_tuple(total_epochs, "total_epochs")
    warm = _as_int_tuple(warmup_epochs, "warmup_epochs")
    if len(epochs) not in (1, 3):
        raise ValueError(
            f"total_epochs must be an int or a tuple of 3 ints, got {len(epochs)} values."
        )
    if any(e < 0 for e in epochs) or sum(epochs) == 0:
        raise ValueError(
            f"total_epochs must be non-negative with at least one epoch, got {epochs}."
        )
    if len(warm) == 1:
        warm = warm * len(epochs)
    elif len(epochs) == 1 and len(warm) == 3:
        warm = warm[:1]  # one stage: it is stage 1, so it takes stage 1's warmup
    if len(warm) != len(epochs) or any(w < 0 for w in warm):
        raise ValueError(
            f"warmup_epochs must be a non-negative int or one per stage ({len(epochs)}), "
            f"got {warm}."
        )
    rates = tuple(lr) if isinstance(lr, Sequence) and not isinstance(lr, str) else (lr,)
    if len(rates) == 1 and len(epochs) == 3:
        rates = (rates[0], rates[0], rates[0] / 1000)
    if len(rates) != len(epochs) or not all(
        isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 and math.isfinite(r)
        for r in rates
    ):
        raise ValueError(
            f"lr must be a positive finite number or one per stage ({len(epochs)}), "
            f"got {lr!r}."
        )
    if isinstance(dof, bool) or not (isinstance(dof, (int, float)) and 0 < dof
                                      and math.isfinite(dof)):
        raise ValueError(f"dof must be a positive finite number (1 is the Cauchy kernel), "
                         f"got {dof!r}.")
    dof = float(dof)
    if len(epochs) == 1:
        return [Stage(epochs[0], float(rates[0]), min(warm[0], epochs[0]), out_dim, "all",
                      "train", dof)]
    specs = [
        (projection_dim, "all", rates[0], 1.0),
        (out_dim, "last", rates[1], dof),
        (out_dim, "all", rates[2], dof),
    ]
    return [
        Stage(e, float(stage_lr), min(w, e), dim, trains, STAGE_NAMES[i], stage_dof)
        for i, (e, w, (dim, trains, stage_lr, stage_dof))
        in enumerate(zip(epochs, warm, specs, strict=True))
        if e > 0
    ]


def lr_at(stage: Stage, step: int, steps_per_epoch: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based) within ``stage``.

    Linear warmup from ``lr / W`` to ``lr`` over the first ``W`` steps, then cosine
    annealing towards 0 over the rest. Both ramps are shifted by one step so that the
    very first and the very last step use a strictly positive rate: no step is ever
    wasted at a learning rate of 0.
    """
    total = stage.epochs * steps_per_epoch
    warm = stage.warmup_epochs * steps_per_epoch
    if step < warm:
        return stage.lr * (step + 1) / warm
    t, span = step - warm, total - warm
    return stage.lr * 0.5 * (1.0 + math.cos(math.pi * t / span))
