"""A training run's progress record: where a run is, as one immutable value.

The training thread publishes a fresh :class:`Progress` after every step; the notebook,
the monitor and the run directory read it without locks of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Progress", "STATES"]

STATES = ("idle", "running", "paused", "stopping", "stopped", "finished", "failed")


@dataclass(frozen=True)
class Progress:
    """Where a run is. Immutable; a fresh record replaces it after every step.

    Attributes
    ----------
    state : str
        One of ``STATES``.
    stage, n_stages : int
        Current stage (1-based) and number of stages.
    stage_name : str
        'pretrain', '2D readout' or 'fine-tune' ('train' for a single stage).
    epoch, epochs_in_stage : int
        Current epoch within the stage (1-based) and epochs in the stage.
    step_in_stage, steps_in_stage : int
        Steps done within the stage and steps the stage has.
    steps_done, total_steps : int
        Steps done and total over the whole schedule.
    loss, lr : float
        Loss and learning rate of the last step.
    elapsed, eta : float
        Seconds spent training, over all resumes of the estimator's schedule (pauses
        excluded), and the estimated seconds left. With a ``time_budget``, the budget
        seconds used so far and the budget seconds left.
    time_budget : float or None
        The estimator's time budget in seconds, if it has one.
    precision : str
        'bf16' or 'fp32', the estimator's ``precision_``.
    threads : int
        CPU threads of the training steps now (``n_threads``); 0 on a GPU.
    views_per_s : float
        Recent training throughput (two views per image).
    compiling : bool
        The step under way compiles the model (``torch_compile``): it takes long.
    compile_seconds : float
        Seconds spent compiling so far.
    """

    state: str = "idle"
    stage: int = 1
    n_stages: int = 3
    stage_name: str = ""
    epoch: int = 1
    epochs_in_stage: int = 0
    step_in_stage: int = 0
    steps_in_stage: int = 0
    steps_done: int = 0
    total_steps: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    elapsed: float = 0.0
    eta: float = float("nan")
    views_per_s: float = 0.0
    time_budget: float | None = None
    precision: str = ""
    threads: int = 0
    compiling: bool = False
    compile_seconds: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the whole schedule done, in [0, 1]."""
        return self.steps_done / self.total_steps if self.total_steps else 0.0
