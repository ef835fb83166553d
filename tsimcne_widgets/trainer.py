"""The training loop, one optimiser step at a time.

``Trainer`` owns the model, the optimiser, the random generator and the position in
the schedule. ``step()`` runs exactly one batch, so the estimator's ``fit`` and the
background run can both drive it and stop, pause or checkpoint between any two steps.
With a :class:`~tsimcne_widgets.distributed.DistContext` it runs its share of each global
batch in one of several processes (see :mod:`tsimcne_widgets.distributed`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace

import torch

from ._device import autocast, memory_format
from .augment import Augmentations, augment
from .budget import TimeBudget
from .neighbors import image_neighbors
from .schedule import Stage, lr_at

__all__ = ["StepInfo", "Trainer", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the weights are those before the bad step."""


@dataclass(frozen=True)
class StepInfo:
    """What one step did. Indices are 0-based; ``stage_end`` implies ``epoch_end``.

    ``stage`` and ``epoch`` are those of :class:`~tsimcne_widgets.snapshots.Snapshot`
    (0-based here), ``step_in_epoch`` the step's index within its epoch. ``loss`` is the
    mean loss of the steps read back at the latest sync: this step's own where ``synced``
    (every step on a CPU, see :attr:`Trainer.sync_every`).
    """

    stage: int
    epoch: int
    step_in_epoch: int
    steps_per_epoch: int
    loss: float
    lr: float
    epoch_end: bool
    stage_end: bool
    epoch_loss: float | None
    epoch_seconds: float | None
    synced: bool = True


class Trainer:
    """Runs the staged schedule on uint8 images that live on the training device.

    The hot loop does not wait for the device. A non-finite loss is caught on the
    device: the fused optimiser skips that update and the BatchNorm statistics are put
    back, so the weights stay those of the last good step. The losses are read back every
    :attr:`sync_every` steps and at every epoch end, which is when a non-finite one
    raises :class:`NonFiniteLossError`.

    Attributes
    ----------
    sync_every : int
        Steps between two reads of the loss: 1 on a CPU, where reading costs nothing, and
        16 on an accelerator, whose queue of kernels then never runs dry.
    compile_options : dict or None
        ``torch.compile`` keyword arguments for the training forward (and so backward)
        pass; None trains eagerly. The first step of each stage compiles (a stage changes
        which weights train); those steps are not timed for the thread count or the time
        budget's plan, though the budget's clock runs through them.
    compile_seconds : float
        Wall time of the steps that compiled.
    """

    def __init__(self, model, schedule: list[Stage], batch_size: int, augmentations: Augmentations,
                 loss_fn, generator: torch.Generator, device: torch.device, amp: bool,
                 momentum: float = 0.9, weight_decay: float = 5e-4, clip_value: float = 4.0,
                 budget: TimeBudget | None = None, dist=None, seed: int = 0,
                 neighbor_positives: float = 0.0, n_neighbors: int = 15,
                 channels_last: bool = True, neighbor_space: str = "pixels"):
        self.model = model
        self.schedule = schedule
        self.batch_size = batch_size
        self.augmentations = augmentations
        self.loss_fn = loss_fn
        self.generator = generator
        self.device = device
        self.amp = amp
        self.channels_last = channels_last
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.clip_value = clip_value
        # With a time budget the stages' epochs are re-planned as training goes; the
        # warmups scale with them, from the proportions' (stage lengths in epochs).
        self.budget = budget
        self._warmup_shares = [s.warmup_epochs / s.epochs for s in schedule]
        self.images: torch.Tensor | None = None
        self.steps_per_epoch = 0
        # Position of the next step to run.
        self.stage = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.perm: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.configured_stage = -1
        self.last_finite_loss = float("nan")
        self._epoch_loss_sum = 0.0
        self._epoch_losses_read = 0
        self._epoch_seconds = 0.0
        self.sync_every = 1 if torch.device(device).type == "cpu" else 16
        # Losses not read back yet: (stage, epoch, step_in_epoch, 0-d tensor) per step.
        self._pending: list[tuple[int, int, int, torch.Tensor]] = []
        self._last_loss = float("nan")
        self.compile_options: dict | None = None
        self.compile_seconds = 0.0
        self._compiled: tuple[torch.nn.Module, torch.nn.Module] | None = None
        self._compiled_stage = -1
        # Several processes: `generator` (perm, new layers) stays the same on all ranks,
        # each augments with its own stream, seeded from `seed` by position.
        self.seed = seed
        self.set_dist(dist)
        # Sets the CPU thread count of every step (threads.py); None leaves it alone.
        self.thread_control = None
        # Share of the positive pairs that pair an image with one of its nearest
        # neighbours in pixel or HOG space (found by the first step) instead of with itself.
        self.neighbor_positives = float(neighbor_positives)
        self.n_neighbors = n_neighbors
        self.neighbor_space = neighbor_space
        self.neighbors: torch.Tensor | None = None
        self._full_size: torch.Tensor | None = None  # HOG's input until the search

    def set_dist(self, dist) -> None:
        """Train as one rank of ``dist`` (a :class:`DistContext`), or alone with None."""
        self.dist = dist
        self._ddp = None
        self._ddp_stage = -1
        self._aug_generator = None

    # -- data ---------------------------------------------------------------------------
    def set_images(self, images: torch.Tensor) -> None:
        """Attach the training images (uint8, (N, C, H, W)); moved to the device once.

        Where the model has an ``input_size``, they are resized to it here, once, so that
        the views are augmented at the size the backbone sees (``at_input_size``).
        """
        n = images.shape[0]
        self.images = self.model.at_input_size(images).to(self.device)
        spe = max(1, n // self.batch_size)
        if self.steps_per_epoch and spe != self.steps_per_epoch:
            raise ValueError(
                f"X has {n} images, which gives {spe} steps per epoch, but this run was "
                f"started with {self.steps_per_epoch}; resume with the same data."
            )
        self.steps_per_epoch = spe
        self.neighbors = None  # of the new images, found by the next step
        # HOG sees edges that downsampling to input_size blurs: keep the caller's images
        # (no copy) until the search.
        self._full_size = images if self.neighbor_space == "hog" else None

    def _find_neighbors(self) -> None:
        """Find the images' neighbours if ``neighbor_positives`` needs them and they are
        not known yet. Called from the step, not from ``set_images``: a background run's
        start stays instant, and the search (30 s for 70,000 images on 2 CPU cores) runs
        on the training thread, before the step's timer starts (and, in a run's first
        step, before the time budget's clock starts)."""
        if self.neighbors is None and self.neighbor_positives > 0 and len(self.images) > 1:
            # Pixels are searched in what the backbone sees (a kNN classifier on
            # Fashion-MNIST's pixels scores 0.829 at 14x14 and 0.814 at 28x28); HOG at
            # full size (80.9 % of the neighbours share the class at 28x28, 80.0 % at 14).
            source = self._full_size if self.neighbor_space == "hog" else self.images
            self._full_size = None
            self.neighbors = image_neighbors(source, self.n_neighbors, self.neighbor_space,
                                             self.device)

    def partners(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Indices of the images whose views pair with those of ``images[idx]``: ``idx``
        itself, or for a share ``neighbor_positives`` of them one of their
        ``n_neighbors`` nearest neighbours, drawn with ``generator``."""
        self._find_neighbors()
        if self.neighbors is None:
            return idx
        n, k = idx.shape[0], self.neighbors.shape[1]
        pick = torch.randint(k, (n,), generator=generator, device=self.device)
        use = torch.rand(n, generator=generator, device=self.device) < self.neighbor_positives
        return torch.where(use, self.neighbors[idx, pick], idx)

    # -- position -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stage >= len(self.schedule)

    @property
    def total_steps(self) -> int:
        return sum(s.epochs for s in self.schedule) * self.steps_per_epoch

    @property
    def steps_done(self) -> int:
        before = sum(s.epochs for s in self.schedule[: self.stage]) * self.steps_per_epoch
        return before + self.epoch * self.steps_per_epoch + self.step_in_epoch

    def current_lr(self) -> float:
        st = self.schedule[min(self.stage, len(self.schedule) - 1)]
        if self.done:
            return 0.0
        return lr_at(st, self.epoch * self.steps_per_epoch + self.step_in_epoch,
                     self.steps_per_epoch)

    # -- time budget ----------------------------------------------------------------------
    def pause_clock(self) -> None:
        """Stop counting budget time until the next step (call when training pauses or
        ends, so that idle time does not use up the budget)."""
        if self.budget is not None:
            self.budget.pause()

    def _follow_budget(self) -> None:
        """Count budget time from this step on, and plan once the first steps are timed."""
        self.budget.resume()
        if not self.budget.planned:
            self._replan()

    def _replan(self) -> None:
        """Re-plan the stages' epochs from the budget's timings, counting the epoch in
        progress (or just finished) as begun."""
        budget = self.budget
        epochs = budget.plan(self.steps_per_epoch, self.stage, self.epoch + 1,
                             self.epoch * self.steps_per_epoch + self.step_in_epoch,
                             [s.epochs for s in self.schedule])
        if self.dist is not None:  # step times differ per rank: all follow rank 0's plan
            epochs = self.dist.broadcast_plan(epochs, len(self.schedule), self.device)
            budget.planned = epochs is not None
        if epochs is not None:
            self.set_epochs(epochs)

    def set_epochs(self, epochs, *, keep_done: bool = True) -> None:
        """Change the stages' lengths; the warmups keep their share of each stage, at
        least one epoch where there is one. With ``keep_done``, finished stages and the
        epochs begun are kept."""
        for i, (st, e) in enumerate(zip(self.schedule, epochs, strict=True)):
            if keep_done and i < self.stage:
                continue
            if keep_done and i == self.stage:
                e = max(int(e), self.epoch + 1)
            e = max(int(e), 1)
            share = self._warmup_shares[i]
            warm = min(e, math.ceil(share * e - 1e-9)) if share > 0 else 0
            if (e, warm) != (st.epochs, st.warmup_epochs):
                self.schedule[i] = replace(st, epochs=e, warmup_epochs=warm)

    # -- stages -------------------------------------------------------------------------
    def _configure_stage(self) -> None:
        st = self.schedule[self.stage]
        head = self.model.head
        if head.last.out_features != st.out_dim:
            head.replace_last(st.out_dim, generator=self.generator)
        train_all = st.trains == "all"
        for p in self.model.parameters():
            p.requires_grad_(train_all)
        for p in head.last.parameters():
            p.requires_grad_(True)
        self.model.to(self.device, memory_format=memory_format(self.channels_last))
        params = [p for p in self.model.parameters() if p.requires_grad]
        # Fused: one kernel for all parameters (2.5x faster than foreach for ResNet18 on a
        # CPU), and it skips the update on the device when `found_inf` is set.
        self.optimizer = torch.optim.SGD(params, lr=st.lr, momentum=self.momentum,
                                         weight_decay=self.weight_decay, fused=self._fused)
        self.configured_stage = self.stage

    @property
    def _fused(self) -> bool:
        return self.device.type in ("cpu", "cuda")

    def _set_mode(self) -> None:
        if self.schedule[self.stage].trains == "all":
            self.model.train()
        else:
            # Frozen layers stay in eval mode so BatchNorm statistics do not drift.
            self.model.eval()
            self.model.head.last.train()

    # -- one step -----------------------------------------------------------------------
    @property
    def will_compile(self) -> bool:
        """Whether the next step compiles the model (and so takes much longer)."""
        return (self.compile_options is not None and not self.done
                and self._compiled_stage != self.stage)

    def step(self) -> StepInfo:
        """Run one optimiser step and advance the position."""
        if self.done:
            raise RuntimeError("the schedule is already complete")
        if self.images is None:
            raise RuntimeError("set_images() must be called before step()")
        self._find_neighbors()  # before the step's clock starts
        compiles = self.will_compile
        if self.configured_stage != self.stage:
            self._configure_stage()
            if self.budget is not None:
                self.budget.new_stage()
        if self.budget is not None:
            self._follow_budget()
        if self.thread_control is not None:
            self.thread_control.before_step()
        t0 = time.perf_counter()
        st = self.schedule[self.stage]
        n, b = self.images.shape[0], self.batch_size
        if self.step_in_epoch == 0 or self.perm is None:
            self.perm = torch.randperm(n, generator=self.generator, device=self.device)
            if self.dist is not None:  # the ranks must split the very same batches
                self.dist.broadcast(self.perm)
            self._epoch_loss_sum = 0.0
            self._epoch_losses_read = 0
            self._epoch_seconds = 0.0
        idx = self.perm[self.step_in_epoch * b:(self.step_in_epoch + 1) * b]
        if self.dist is not None:
            idx = self.dist.shard(idx)
        batch = self.images[idx]
        gen = self._augment_generator()
        views = augment(torch.cat([batch, self.images[self.partners(idx, gen)]]),
                        self.augmentations, gen)
        views = views.contiguous(memory_format=memory_format(self.channels_last))

        lr = lr_at(st, self.epoch * self.steps_per_epoch + self.step_in_epoch,
                   self.steps_per_epoch)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self._set_mode()
        # BatchNorm statistics change in the forward pass; keep a copy (they are small)
        # so that a non-finite loss leaves the last good state fully intact.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with autocast(self.device, self.amp):
            z = self._train_model()(views)
        loss_fn = self.loss_fn if st.dof == 1 else functools.partial(self.loss_fn, dof=st.dof)
        if self.dist is None:
            loss = loss_fn(z)
            value = loss.detach().float()
        else:  # this rank's share, against the global batch; the value is the global loss
            loss, loss_value = self.dist.contrastive_loss(loss_fn, z)
            value = torch.tensor(loss_value, device=self.device)
        finite = torch.isfinite(value)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(
            [p for p in self.model.parameters() if p.requires_grad], self.clip_value
        )
        if self._fused:
            self.optimizer.found_inf = (~finite).float()
            self.optimizer.step()
        elif bool(finite):  # no device-side skip on this backend: one sync per step
            self.optimizer.step()
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(torch.where(finite, b, saved))
        self._pending.append((self.stage, self.epoch, self.step_in_epoch, value))
        epoch_end = self.step_in_epoch + 1 >= self.steps_per_epoch
        synced = epoch_end or len(self._pending) >= self.sync_every
        if synced:
            self._read_losses()  # raises on a non-finite loss, before the position moves
        step_seconds = time.perf_counter() - t0
        self._epoch_seconds += step_seconds
        if compiles:  # not a training step's time: keep it out of the timings
            self.compile_seconds += step_seconds
            self._compiled_stage = self.stage
            if self.budget is not None:
                self.budget.new_stage()
        elif self.thread_control is not None:
            self.thread_control.after_step(step_seconds)
        if self.budget is not None:
            self.budget.step_done(self.stage)

        info_stage, info_epoch, info_step = self.stage, self.epoch, self.step_in_epoch
        self.step_in_epoch += 1
        stage_end = False
        epoch_loss = epoch_seconds = None
        if epoch_end:
            if self.dist is not None:
                # Each rank's last forward pass updated its BatchNorm statistics with its
                # own views; all keep rank 0's, so that the ranks' models are identical.
                self.dist.sync_buffers(self.model)
            epoch_loss = self._epoch_loss_sum / self.steps_per_epoch
            epoch_seconds = self._epoch_seconds
            if self.budget is not None:
                # Before the stage-end test: a stage's length is decided on the timings
                # of the epoch just run, not on the plan made before it (at the very
                # start, from the first few, often slow, steps).
                self._replan()
            self.step_in_epoch = 0
            self.perm = None
            self.epoch += 1
            if self.epoch >= st.epochs:
                stage_end = True
                self.epoch = 0
                self.stage += 1
        return StepInfo(info_stage, info_epoch, info_step, self.steps_per_epoch,
                        self._last_loss, lr, epoch_end, stage_end, epoch_loss, epoch_seconds,
                        synced)

    def _read_losses(self) -> None:
        """Read back the pending losses (one sync): add them to the epoch's sum, or raise
        :class:`NonFiniteLossError` naming the first non-finite one."""
        pending, self._pending = self._pending, []
        values = torch.stack([v for *_, v in pending]).cpu().tolist()
        for (stage, epoch, step, _), value in zip(pending, values, strict=True):
            if not math.isfinite(value):
                skipped = sum(not math.isfinite(v) for v in values)
                later = "" if len(pending) == 1 else (
                    f" ({skipped} of the last {len(pending)} steps were non-finite and "
                    "skipped)")
                raise NonFiniteLossError(
                    f"the loss became {value} at stage {stage + 1} "
                    f"({self.schedule[stage].name}), epoch {epoch + 1}, step {step + 1}{later}; "
                    f"the last finite loss was {self.last_finite_loss:.4g}. Non-finite steps "
                    "change no weights: the weights are those of the last good step. Try a "
                    "lower lr or mixed_precision=False."
                )
            self.last_finite_loss = value
            self._epoch_loss_sum += value
            self._epoch_losses_read += 1
        self._last_loss = sum(values) / len(values)

    @property
    def epoch_mean_loss(self) -> float:
        """Mean loss of the steps read back so far in the epoch under way (after its last
        step, until the next one: the whole epoch's); NaN before the first."""
        n = self._epoch_losses_read
        return self._epoch_loss_sum / n if n else float("nan")

    def _augment_generator(self) -> torch.Generator:
        if self.dist is None:
            return self.generator
        if self._aug_generator is None:
            self._aug_generator = torch.Generator(device=self.device)
        # Seeded by position, so a resumed run (any number of ranks) needs no saved state.
        self._aug_generator.manual_seed(
            self.dist.augment_seed(self.seed, self.stage, self.epoch, self.step_in_epoch))
        return self._aug_generator

    def _train_model(self):
        """The module of the training forward pass: in DDP with several processes, wrapped
        anew when a stage has changed the trainable parameters; compiled if asked."""
        module = self.model
        if self.dist is not None:
            if self._ddp_stage != self.configured_stage:
                self._ddp = None  # the old wrapper's gradient hooks go with it
                self._ddp = self.dist.wrap(self.model)
                self._ddp_stage = self.configured_stage
            module = self._ddp
        if self.compile_options is None:
            return module
        if self._compiled is None or self._compiled[0] is not module:
            # Shares the module's weights; guards recompile it when a stage changes it.
            self._compiled = (module, torch.compile(module, **self.compile_options))
        return self._compiled[1]

    # -- state for checkpoints ----------------------------------------------------------
    def state_dict(self) -> dict:
        if self._pending:  # the epoch's loss sum must include every step taken
            self._read_losses()
        return {
            "stage": self.stage,
            "epoch": self.epoch,
            "step": self.step_in_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "configured_stage": self.configured_stage,
            "perm": None if self.perm is None else self.perm.cpu(),
            "generator": self.generator.get_state(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "last_finite_loss": self.last_finite_loss,
            "epoch_loss_sum": self._epoch_loss_sum,
            "epoch_seconds": self._epoch_seconds,
            "epochs": [s.epochs for s in self.schedule],
            "budget": None if self.budget is None else self.budget.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.stage, self.epoch = state["stage"], state["epoch"]
        self.step_in_epoch = state["step"]
        self.steps_per_epoch = state["steps_per_epoch"]
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.generator.set_state(state["generator"])
        self.last_finite_loss = state["last_finite_loss"]
        self._epoch_loss_sum = state["epoch_loss_sum"]
        self._epoch_losses_read = self.step_in_epoch  # saving read back every step taken
        self._epoch_seconds = state["epoch_seconds"]
        if "epochs" in state:  # a budget may have re-planned the stages
            self.set_epochs(state["epochs"], keep_done=False)
        if self.budget is not None and state.get("budget") is not None:
            self.budget.load_state_dict(state["budget"])
        if state["optimizer"] is not None and state["configured_stage"] == self.stage:
            self._configure_stage()
            self.optimizer.load_state_dict(state["optimizer"])
            for g in self.optimizer.param_groups:  # a checkpoint from another device
                g["fused"] = self._fused
                if self._fused:
                    g["foreach"] = None


def progress_bar(trainer: Trainer):
    """A tqdm bar over the trainer's steps, for ``fit``; silent on ranks other than 0."""
    from tqdm.auto import tqdm

    quiet = trainer.dist is not None and not trainer.dist.is_main
    return tqdm(total=trainer.total_steps, initial=trainer.steps_done, unit="step",
                dynamic_ncols=True, disable=quiet)


def update_bar(bar, info: StepInfo, schedule, total_steps: int, precision: str,
               threads: int | None = None, compile_seconds: float = 0.0) -> None:
    """Advance ``bar`` by the step ``info``; ``threads`` is the CPU thread count, if any,
    and ``compile_seconds`` the time spent compiling so far."""
    st = schedule[info.stage]
    if bar.total != total_steps:  # a time budget re-planned the stages
        bar.total = total_steps
    bar.set_description(f"stage {info.stage + 1}/{len(schedule)} {st.name}", refresh=False)
    extra = {} if threads is None else {"threads": threads}
    if compile_seconds:
        extra["compile"] = f"{compile_seconds:.0f}s"
    bar.set_postfix(epoch=f"{info.epoch + 1}/{st.epochs}", loss=f"{info.loss:.3f}",
                    precision=precision, **extra, refresh=False)
    bar.update(1)


def train_to_end(trainer: Trainer, on_step, *, bar: bool, precision: str) -> None:
    """Step ``trainer`` through the rest of its schedule, as ``fit`` does.

    ``on_step(info)`` gets every step's :class:`StepInfo`; ``bar`` shows a tqdm bar whose
    postfix names ``precision`` and the thread count. Whatever happens, the trainer's
    clock stops and the caller's CPU thread count comes back.
    """
    progress = progress_bar(trainer) if bar else None
    threads = trainer.thread_control
    try:
        while not trainer.done:
            if progress is not None and trainer.will_compile:
                progress.set_description(f"stage {trainer.stage + 1}/{len(trainer.schedule)}"
                                         " compiling the model")
            info = trainer.step()
            on_step(info)
            if progress is not None:
                update_bar(progress, info, trainer.schedule, trainer.total_steps, precision,
                           None if threads is None else threads.threads,
                           trainer.compile_seconds)
    finally:
        trainer.pause_clock()
        if threads is not None:
            threads.restore()
        if progress is not None:
            progress.close()
