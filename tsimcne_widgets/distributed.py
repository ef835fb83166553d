"""Training on several processes (GPUs) with ``torch.distributed``, e.g. under ``torchrun``.

Every process (rank) holds the whole data set and the same model. Each step, all ranks draw
the same global batch of ``batch_size`` images from one shared permutation; rank ``r``
takes its ``batch_size // world_size`` images of it, augments them on its own device with
its own random stream and embeds them with the model wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`. The embeddings of all ranks are then
gathered *with gradients*, so that every anchor is contrasted with the whole global batch,
as on one device:

- The loss expects the views laid out as ``[a_1..a_B, b_1..b_B]`` over the global batch,
  so each rank's ``[a, b]`` block is split and the first views of all ranks are put before
  all second views (:meth:`DistContext.gather_views`).
- Rank ``r`` computes only the loss terms of its own anchors (its ``2 B / world_size``
  rows) against all ``2 B`` columns, divided by the global ``2 B``; these partial losses
  add up to the single-device loss. The backward pass of the gather sums each rank's
  gradient for a row over the ranks, which gives every rank the full loss's gradient for
  its own embeddings. DDP then *averages* the parameter gradients over the ranks, so the
  partial loss is multiplied by ``world_size`` first: the averaged gradient is then exactly
  the gradient of the single-device loss on the ``2 B`` views
  (:meth:`DistContext.contrastive_loss`, checked in ``tests/test_distributed.py``).

BatchNorm statistics are computed per rank, over its ``2 B / world_size`` views, as in
SimCLR without synchronised BatchNorm. DDP broadcasts rank 0's running statistics at every
forward pass, and the trainer does so at every epoch end, so that the ranks' models are
identical from one epoch to the next.

What else changes with several processes:

- **Learning rate.** ``batch_size`` is the global batch; ``lr='auto'`` is
  ``0.03 * batch_size / 256`` of that, so the schedule is the same for any number of
  processes.
- **Outputs.** Rank 0 alone writes checkpoints and shows a progress bar. Snapshots,
  ``transform`` and the final ``embedding_`` use the unwrapped model and no collectives:
  each rank computes them locally (``fit`` ends with the same ``embedding_`` on every
  rank, each embedding all images).
- **Exit.** A process group this module started is destroyed at interpreter exit, after
  the live runs have stopped, as torch asks (``destroy_process_group`` before exit).
- **Resuming.** A checkpoint holds the unwrapped model, the global batch size and the
  position in the schedule, so it continues with any number of processes that divides the
  batch size, or in one (``TSimCNE.load(path).start(X)``). Each rank's augmentations are
  seeded by the seed, its rank and the position, so they need no saved state.
- **Stopping.** A run stops where all ranks stop: ``run.stop()``, ``pause()`` or a
  watcher's ``control.json`` act on one process only, and the others then wait in the next
  collective (until the process group's timeout). Stop a distributed run by ending all its
  processes (Ctrl-C to ``torchrun``); :meth:`DistContext.any` is the building block for a
  stop that all ranks agree on.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DistContext", "check_setting", "context", "is_active", "is_main", "rank",
           "world_size", "local_device"]

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class _AllGather(torch.autograd.Function):
    """Every rank's tensor, stacked, with gradients: the backward pass sums what all ranks
    send back to each rank's part. (``torch.distributed.nn.functional.all_gather`` does the
    same but is deprecated.) Uses only ``all_gather`` and ``all_reduce``, which Gloo and
    NCCL both support."""

    @staticmethod
    def forward(ctx, z):
        z = z.contiguous()
        parts = [torch.empty_like(z) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(parts, z)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)
        return grad[torch.distributed.get_rank()]


def check_setting(value) -> None:
    """Validate the estimator's ``distributed`` parameter ('auto', True or False)."""
    if not (value == "auto" or isinstance(value, bool)):
        raise ValueError(f"distributed must be 'auto', True or False, got {value!r}.")


def is_active() -> bool:
    """Whether a ``torch.distributed`` process group is initialised in this process."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 without one."""
    return torch.distributed.get_rank() if is_active() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 without one."""
    return torch.distributed.get_world_size() if is_active() else 1


def is_main() -> bool:
    """True on rank 0, and in a process without a process group: the rank that writes
    files and prints."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under ``torchrun``, ``'cuda'`` without an index means this rank's GPU,
    ``cuda:$LOCAL_RANK``; any other device is returned as it is."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def _init_from_env(device: torch.device) -> None:
    """``init_process_group`` from the variables ``torchrun`` sets: NCCL for CUDA, else
    Gloo."""
    missing = [v for v in _ENV if v not in os.environ]
    if missing:
        raise ValueError(
            "distributed=True needs a torch.distributed process group, or the environment "
            f"variables torchrun sets to start one; {', '.join(missing)} not set. Launch "
            "with `torchrun --nproc-per-node N ...`, or pass distributed='auto'."
        )
    if device.type == "cuda":
        # NCCL binds each rank to the GPU that is current when the group starts.
        torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend="nccl")
    else:
        torch.distributed.init_process_group(backend="gloo")
    atexit.register(_destroy_at_exit)


def _destroy_at_exit() -> None:
    """Stop the live runs (their threads may be inside a collective), then destroy the
    process group that :func:`_init_from_env` started."""
    run = sys.modules.get(f"{__package__}.run")
    if run is not None:
        run.stop_all_runs()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def context(setting, device: torch.device) -> DistContext | None:
    """The :class:`DistContext` for the ``distributed`` parameter ``setting``, or None.

    Parameters
    ----------
    setting : {'auto', True, False}
        'auto': use the process group if one is initialised. True: also initialise it from
        ``torchrun``'s environment variables if none is (NCCL on CUDA, else Gloo). False:
        never.
    device : torch.device
        The training device, already resolved (:func:`local_device`).

    Returns
    -------
    DistContext or None
        None for a single process, also for a group of one process.
    """
    check_setting(setting)
    if setting is False:
        return None
    if not is_active():
        if setting == "auto":
            return None
        if not torch.distributed.is_available():
            raise ValueError("distributed=True, but this PyTorch build has no "
                             "torch.distributed.")
        _init_from_env(device)
    if world_size() == 1:
        return None  # nothing to share: the plain single-process code path
    return DistContext(rank(), world_size())


@dataclass(frozen=True)
class DistContext:
    """This process's place in the default process group, and the collectives the trainer
    needs. Made by :func:`context`; every method that communicates must be called by all
    ranks at the same point of training.

    Attributes
    ----------
    rank, world_size : int
        This process's rank and the number of processes.
    """

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """True on rank 0, which writes checkpoints and shows progress."""
        return self.rank == 0

    # -- data -------------------------------------------------------------------------
    def check_batch_size(self, batch_size: int) -> None:
        """The global batch must split evenly over the ranks."""
        if batch_size % self.world_size:
            raise ValueError(
                f"batch_size={batch_size} must be divisible by the number of processes "
                f"({self.world_size}): each takes batch_size // {self.world_size} images of "
                "every global batch."
            )

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch's indices (the same on every rank)."""
        b = idx.shape[0] // self.world_size
        return idx[self.rank * b:(self.rank + 1) * b]

    def augment_seed(self, seed: int, *position: int) -> int:
        """A seed for this rank's augmentations at a ``position`` (stage, epoch, step):
        each rank draws its own views, and a resumed run draws the same ones again."""
        words = np.random.SeedSequence([seed, self.rank, *position]).generate_state(2)
        return int(words[0]) << 32 | int(words[1])

    # -- collectives --------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel`, for the
        training forward pass only; its parameters that require gradients are synchronised.
        Making it broadcasts rank 0's parameters and buffers."""
        device = next(model.parameters()).device
        ids = [device] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``tensor`` on every rank (in place)."""
        torch.distributed.broadcast(tensor, src=0)
        return tensor

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics) in ``model`` on every rank."""
        with torch.no_grad():
            for buf in model.buffers():
                self.broadcast(buf)

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` (e.g. a choice made by timing, which may differ per rank)."""
        t = torch.tensor([int(flag)], device=self._comm_device(device))
        return bool(self.broadcast(t).item())

    def broadcast_plan(self, epochs: list[int] | None, n_stages: int,
                       device: torch.device) -> list[int] | None:
        """Rank 0's epochs per stage (a time budget's plan, timed per rank), or None."""
        t = torch.zeros(n_stages + 1, dtype=torch.long, device=self._comm_device(device))
        if epochs is not None:
            t[0] = 1
            t[1:] = torch.tensor(epochs, dtype=torch.long)
        self.broadcast(t)
        return [int(e) for e in t[1:].tolist()] if t[0] else None

    def any(self, *flags: bool, device: torch.device) -> tuple[bool, ...]:
        """Whether each of ``flags`` is true on any rank, in one collective: for decisions
        all ranks must share, such as pausing or stopping at a batch boundary (a rank that
        stops alone leaves the others waiting in the next collective)."""
        t = torch.tensor([int(f) for f in flags], device=self._comm_device(device))
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def gather_views(self, z: torch.Tensor) -> torch.Tensor:
        """All ranks' embeddings, with gradients, laid out as the loss expects.

        Parameters
        ----------
        z : torch.Tensor of shape (2 b, d)
            This rank's embeddings ``[a_1..a_b, b_1..b_b]`` (``b`` images per rank).

        Returns
        -------
        torch.Tensor of shape (2 B, d), B = b * world_size
            ``[a of rank 0, a of rank 1, ..., b of rank 0, b of rank 1, ...]``. Its backward
            pass sums the gradients that all ranks send to each rank's rows.
        """
        b = z.shape[0] // 2
        parts = _AllGather.apply(z)  # (world_size, 2 b, d)
        return torch.cat([parts[:, :b].flatten(0, 1), parts[:, b:].flatten(0, 1)])

    def local_rows(self, b: int, device: torch.device) -> torch.Tensor:
        """Rows of :meth:`gather_views`' output that hold this rank's ``2 b`` views."""
        first = torch.arange(self.rank * b, (self.rank + 1) * b, device=device)
        return torch.cat([first, first + b * self.world_size])

    def contrastive_loss(self, loss_fn, z: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The loss to back-propagate on this rank, and the global batch's loss.

        Parameters
        ----------
        loss_fn : callable
            ``loss_fn(z_all, rows=...)``: the terms of the anchors ``rows`` against all views
            of ``z_all``, summed and divided by ``len(z_all)`` (see
            :mod:`tsimcne_widgets.losses`).
        z : torch.Tensor of shape (2 b, d)
            This rank's embeddings.

        Returns
        -------
        (torch.Tensor, float)
            ``world_size`` times this rank's share of the loss, whose gradient DDP's
            averaging turns into the single-device gradient; and the single-device loss of
            the global batch (the same on every rank).
        """
        z_all = self.gather_views(z)
        part = loss_fn(z_all, rows=self.local_rows(z.shape[0] // 2, z.device))
        total = part.detach().clone()
        torch.distributed.all_reduce(total)
        return part * self.world_size, float(total)

    @staticmethod
    def _comm_device(device: torch.device) -> torch.device:
        # NCCL communicates CUDA tensors only, Gloo CPU tensors.
        if torch.distributed.get_backend() == "nccl":
            return device
        return torch.device("cpu")
