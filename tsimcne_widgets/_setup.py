"""Building an estimator's model, schedule and trainer: one place for ``fit``, ``start``
and ``load``.

:func:`build` sets the estimator's set-up attributes (``device_``, ``schedule_``,
``model_``, ``precision_``, ...) and returns the :class:`Trainer`; a fresh fit and a
loaded checkpoint differ only in the seed, the head size, the input statistics or saved
weights they pass in.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from . import distributed, hog
from ._device import (
    autocast,
    measure_speed,
    memory_format,
    resolve_device,
    resolve_precision,
)
from .augment import Augmentations
from .budget import READOUT_COST, TimeBudget, parse_duration
from .losses import get_loss
from .models import TSimCNEModel, build_backbone
from .neighbors import NEIGHBOR_SPACES
from .pixels import check_size
from .schedule import make_schedule
from .trainer import Trainer


def seed_from(random_state) -> int:
    """The int seed ``random_state`` stands for (a fresh one for None)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    raise TypeError(
        f"random_state must be None, an int or a numpy RandomState, got {random_state!r}."
    )


def check_params(est) -> None:
    """Validate ``est``'s parameters (``__init__`` only stores them)."""

    def pos_int(name, minimum=1):
        v = getattr(est, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}.")

    pos_int("batch_size", 2)
    pos_int("projection_dim")
    pos_int("out_dim")
    pos_int("inference_batch_size")
    pos_int("n_neighbors")
    p = est.neighbor_positives
    if isinstance(p, bool) or not (isinstance(p, numbers.Real) and 0 <= p <= 1):
        raise ValueError(f"neighbor_positives must be a number in [0, 1] (the share of "
                         f"positive pairs made of neighbours), got {p!r}.")
    if est.neighbor_space not in NEIGHBOR_SPACES:
        raise ValueError(f"neighbor_space must be one of {', '.join(map(repr, NEIGHBOR_SPACES))}"
                         f", got {est.neighbor_space!r}.")
    if not (est.lr == "auto" or isinstance(est.lr, (numbers.Real, tuple, list))):
        raise ValueError(
            f"lr must be 'auto', a positive number or one per stage, got {est.lr!r}."
        )
    get_loss(est.metric)
    if not (isinstance(est.temperature, numbers.Real) and est.temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {est.temperature!r}.")
    # dof's own range is checked by make_schedule, which every fit builds through.
    if est.metric == "cosine" and est.dof != 1:
        raise ValueError(f"dof applies to metric='euclidean' only (the cosine loss has no "
                         f"kernel); got dof={est.dof!r} with metric='cosine'.")
    if not (isinstance(est.momentum, numbers.Real) and 0 <= est.momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {est.momentum!r}.")
    if not (isinstance(est.weight_decay, numbers.Real) and est.weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {est.weight_decay!r}.")
    if not (isinstance(est.clip_value, numbers.Real) and est.clip_value > 0):
        raise ValueError(f"clip_value must be a positive number, got {est.clip_value!r}.")
    if est.time_budget is not None:
        parse_duration(est.time_budget, "time_budget")
    check_size(est.input_size, "input_size")
    if not (est.verbose == "auto" or isinstance(est.verbose, bool)):
        raise ValueError(f"verbose must be True, False or 'auto', got {est.verbose!r}.")
    distributed.check_setting(est.distributed)
    compile_options(est.torch_compile)


def check_fitted(est, data) -> None:
    """Refuse an unfitted ``est``, or images ``data`` of another shape than it was
    trained on."""
    if getattr(est, "model_", None) is None:
        raise NotFittedError(
            "This TSimCNE instance is not fitted yet; call fit(X) or load a checkpoint.")
    if data.n_channels != est.n_channels_ or tuple(data.image_shape) != est.image_shape_:
        raise ValueError(
            f"X has images of {data.n_channels} channel(s) and size "
            f"{tuple(data.image_shape)}, but the model was trained on {est.n_channels_} "
            f"channel(s) of size {est.image_shape_}.")


_COMPILE_ARGS = ("mode", "backend", "fullgraph", "dynamic", "options")


def compile_options(value) -> dict | None:
    """``torch_compile`` as ``torch.compile`` keyword arguments; None trains eagerly."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(_COMPILE_ARGS))
        if unknown:
            raise ValueError(f"torch_compile got unknown torch.compile arguments {unknown}; "
                             f"accepted: {', '.join(_COMPILE_ARGS)}.")
        return dict(value)
    raise TypeError("torch_compile must be True, False or a dict of torch.compile arguments "
                    f"({', '.join(_COMPILE_ARGS)}), got {value!r}.")


def augmentations_of(est) -> Augmentations:
    """``est.augmentations`` as an :class:`Augmentations` (None: the defaults)."""
    a = est.augmentations
    if a is None:
        return Augmentations()
    if isinstance(a, Augmentations):
        return a
    if isinstance(a, dict):
        try:
            return Augmentations(**a)
        except TypeError as exc:
            fields = ", ".join(f.name for f in dataclasses.fields(Augmentations))
            raise ValueError(
                f"augmentations has an unknown key ({exc}); accepted keys: {fields}."
            ) from None
    raise TypeError(
        f"augmentations must be None, an Augmentations or a dict, got {type(a).__name__}."
    )


def resolve_backbone(backbone, device: torch.device, image_shape) -> str | torch.nn.Module:
    """'auto': the CPU-sized backbone for small images on a CPU, else the paper's ResNet18."""
    if isinstance(backbone, str) and backbone == "auto":
        small = max(image_shape) <= 32
        return "fast" if device.type == "cpu" and small else "resnet18"
    return backbone


def distributed_context(est) -> distributed.DistContext | None:
    """Resolve ``est.distributed`` (starting the process group for True) and set
    ``world_size_`` and ``rank_``; the :class:`DistContext` or None for one process."""
    device = distributed.local_device(resolve_device(est.device))
    dist = distributed.context(est.distributed, device)
    est.world_size_ = 1 if dist is None else dist.world_size
    est.rank_ = 0 if dist is None else dist.rank
    return dist


def attach_distributed(est, trainer: Trainer) -> None:
    """Continue ``trainer`` (e.g. a loaded checkpoint's) in this process group, if any:
    possibly with another number of ranks than it was trained with, as long as they divide
    its (global) batch size."""
    dist = distributed_context(est)
    if dist is not None:
        dist.check_batch_size(trainer.batch_size)
        expected = distributed.local_device(resolve_device(est.device))
        if expected.type == "cuda" and trainer.device != expected:
            raise ValueError(
                f"This estimator was loaded onto {trainer.device}, but rank {dist.rank} "
                f"trains on {expected}; load it with device='{expected}'."
            )
        # Timed per rank, the choice may differ; all take rank 0's.
        amp = dist.broadcast_flag(est.amp_, trainer.device)
        channels_last = dist.broadcast_flag(est.memory_format_ == "channels_last",
                                            trainer.device)
        _set_choice(est, amp, channels_last)
        trainer.amp, trainer.channels_last = amp, channels_last
    trainer.set_dist(dist)


def build(est, *, seed: int, n_channels: int, image_shape, batch_size: int, augmentations,
          head_dim: int | None = None, backbone=None, images: torch.Tensor | None = None,
          model_state: dict | None = None, dist=None) -> Trainer:
    """Set up ``est`` for training and return its Trainer.

    Parameters
    ----------
    est : TSimCNE
        Its parameters are read; its set-up attributes are set.
    seed : int
        Seeds the model's initialisation and the trainer's generator.
    n_channels, image_shape :
        The images' channels and (height, width).
    batch_size : int
        The batch size in use (already clamped to the data).
    augmentations : Augmentations
        The validated augmentation settings.
    head_dim : int, optional
        Output size of the model's last layer; default: that of the first stage.
    backbone : str or torch.nn.Module, optional
        The resolved backbone (a checkpoint's); default: resolve ``est.backbone``.
    images : torch.Tensor, optional
        Training images; their channel statistics become the model's normalisation.
    model_state : dict, optional
        Saved weights to load before the precision is chosen.
    dist : DistContext, optional
        Train as one rank of several processes (see :func:`distributed_context`);
        ``batch_size`` is then the global batch, which the ranks split.
    """
    if dist is not None:
        dist.check_batch_size(batch_size)
    est.world_size_ = 1 if dist is None else dist.world_size
    est.rank_ = 0 if dist is None else dist.rank
    est.device_ = distributed.local_device(resolve_device(est.device))
    est.amp_ = resolve_precision(est.mixed_precision, est.device_)
    est.seed_ = seed
    # With several processes this is the global batch: the rate is the same for any number
    # of them.
    lr = 0.03 * batch_size / 256 if est.lr == "auto" else est.lr
    est.schedule_ = make_schedule(est.total_epochs, lr, est.warmup_epochs, est.projection_dim,
                                  est.out_dim, est.dof)
    est.n_channels_ = n_channels
    est.image_shape_ = tuple(image_shape)
    if (est.neighbor_space == "hog" and est.neighbor_positives > 0
            and min(image_shape) < hog.MIN_SIDE):
        raise ValueError(f"neighbor_space='hog' needs images of at least {hog.MIN_SIDE}x"
                         f"{hog.MIN_SIDE} pixels ({hog.CELLS} cells of 2x2 per side), got "
                         f"{tuple(image_shape)}; use neighbor_space='pixels'.")
    input_size = check_size(est.input_size, "input_size")
    # 'auto' resolves by device: a checkpoint passes what it was trained with.
    est.backbone_ = (backbone if backbone is not None
                    else resolve_backbone(est.backbone, est.device_,
                                          input_size or est.image_shape_))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net, est.feature_dim_ = build_backbone(est.backbone_, n_channels, est.feature_dim)
        model = TSimCNEModel(net, est.feature_dim_,
                             head_dim or est.schedule_[0].out_dim, n_channels, input_size)
    est.model_ = model.to(est.device_, memory_format=torch.channels_last)
    if images is not None:
        # The statistics of what the backbone sees: resizing smooths, so the std drops.
        mean, std = channel_stats(est.model_.at_input_size(images))
        est.model_.mean.copy_(mean.view_as(est.model_.mean))
        est.model_.std.copy_(std.view_as(est.model_.std))
    if model_state is not None:
        est.model_.load_state_dict(model_state)
    _choose_precision(est, batch_size, dist)
    budget = None
    if est.time_budget is not None:
        budget = TimeBudget(
            parse_duration(est.time_budget), [st.epochs for st in est.schedule_],
            costs=[1.0 if st.trains == "all" else READOUT_COST for st in est.schedule_],
        )
    trainer = Trainer(
        est.model_, est.schedule_, batch_size, augmentations,
        get_loss(est.metric, est.temperature), torch.Generator(device=est.device_),
        est.device_, est.amp_, est.momentum, est.weight_decay, est.clip_value, budget=budget,
        dist=dist, seed=seed, neighbor_positives=est.neighbor_positives,
        n_neighbors=est.n_neighbors, channels_last=est.memory_format_ == "channels_last",
        neighbor_space=est.neighbor_space,
    )
    trainer.generator.manual_seed(seed)
    trainer.compile_options = compile_options(est.torch_compile)
    return trainer


def _seen_shape(est) -> tuple[int, int]:
    """The (height, width) the backbone trains on: the model's input size, else the
    images'."""
    return est.model_.input_size or est.image_shape_


def _choose_precision(est, batch_size: int, dist=None) -> None:
    """Set ``amp_``, ``precision_`` and ``memory_format_``. With 'auto' on a device that
    supports bf16, time both precisions in both layouts on a copy of the model (once per
    process and setting); elsewhere channels_last, which won for every backbone on the
    CPUs and GPU measured without bf16. Several processes all take rank 0's choice."""
    est.precision_timings_ = None
    channels_last = True
    if est.mixed_precision == "auto" and est.amp_:
        key = (str(est.device_), str(est.backbone_), est.n_channels_, _seen_shape(est),
               batch_size)
        candidates = [(False, True), (True, True), (False, False), (True, False)]
        (est.amp_, channels_last), est.precision_timings_ = measure_speed(
            _probe_step(est), key, 2 * batch_size, candidates)
    if dist is not None:
        est.amp_ = dist.broadcast_flag(est.amp_, est.device_)
        channels_last = dist.broadcast_flag(channels_last, est.device_)
    _set_choice(est, est.amp_, channels_last)


def _set_choice(est, amp: bool, channels_last: bool) -> None:
    est.amp_ = amp
    est.precision_ = "bf16" if amp else "fp32"
    est.memory_format_ = "channels_last" if channels_last else "contiguous"
    est.model_.to(memory_format=memory_format(channels_last))


def _probe_step(est):
    """A forward+backward pass of a copy of the model, for ``measure_speed``."""
    loss_fn = get_loss(est.metric, est.temperature)
    device, shape = est.device_, (est.n_channels_, *_seen_shape(est))
    source = est.model_
    copies = []  # made on the first call: a cached answer needs no copy

    def step(bf16: bool, channels_last: bool, n: int) -> None:
        if not copies:
            copies.append(copy.deepcopy(source).train())
        fmt = memory_format(channels_last)
        model = copies[0].to(memory_format=fmt)
        # Its own generator: probing must not move the training's random streams.
        x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
        x = x.to(device).contiguous(memory_format=fmt)
        with autocast(device, bf16):
            z = model(x)
        loss_fn(z).backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 1] units, in chunks."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    count = 0
    for chunk in torch.split(images, 4096):
        x = chunk.to(torch.float64).div_(255.0)
        s += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / count
    std = (s2 / count - mean**2).clamp_min(0).sqrt().clamp_min(1e-3)
    return mean.float(), std.float()
