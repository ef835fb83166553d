"""The t-SimCNE estimator, with a scikit-learn interface."""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import pickle
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ._device import autocast, measure_precision, resolve_device, resolve_precision
from ._jupyter import in_jupyter_kernel
from .augment import Augmentations
from .budget import READOUT_COST, TimeBudget, parse_duration
from .data import ImageData, as_images, check_batch_size
from .losses import get_loss
from .models import TSimCNEModel, build_backbone
from .schedule import make_schedule
from .training import StepInfo, Trainer

__all__ = ["TSimCNE"]

_FORMAT = "tsimcne-widgets-checkpoint"
_FORMAT_VERSION = 1


def _seed_from(random_state) -> int:
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


class TSimCNE(BaseEstimator):
    """t-SimCNE: contrastive learning of a 2D embedding of images.

    SimCLR with a Cauchy similarity on Euclidean distances, trained in three stages:
    (1) the whole network with a 128-D output, (2) only a new 2-D last layer, (3) the
    whole network again at a 1000x lower learning rate (Böhm, Berens & Kobak, ICLR 2023).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default='auto'
        'auto' is 'fast' when training on a CPU with images of at most 32x32 pixels and
        'resnet18' otherwise (the paper's). 'resnet18' is ResNet18 with a 3x3 stride-1
        stem and no max-pool, for small images; 'resnet34' ... 'resnet152' the other
        torchvision ResNets with that stem; 'fast' a CNN sized for CPUs that trains 28x28
        images about 4x faster than 'small' (a compact CNN for tiny images), with at least
        its kNN accuracy on digits and Fashion-MNIST; or a module that maps
        ``(B, C, H, W)`` images to ``(B, feature_dim)`` features. Named backbones build
        their first layer for the data's number of channels, so grayscale images are
        used as one channel, not repeated.
    feature_dim : int, optional
        Output size of a custom backbone module. Ignored for named backbones.
    total_epochs : int or tuple of 3 ints, default=(1000, 50, 450)
        Epochs of the three stages. A single int trains one stage, the whole network
        directly with the ``out_dim`` output. With ``time_budget``, only their proportions
        count.
    time_budget : float or str, optional
        Train for this long instead of a fixed number of epochs: seconds, or a string such
        as ``"90s"``, ``"10min"`` or ``"1h 30min"``. The first steps are timed, then the
        stages' epochs are set in the proportions of ``total_epochs`` so that training
        ends within the budget, and re-planned at every epoch start as throughput changes
        (snapshots, other work on the machine). Each stage keeps at least one epoch, so a
        budget too short for that runs over. Paused and stopped time does not count; a
        resumed run continues with what is left. ``schedule_`` holds the final plan and the
        warmups keep their share of each stage.
    batch_size : int, default=512
        Images per step (each gives two views). Clamped to the number of images, with
        a warning.
    lr : float, tuple of 3 floats or 'auto', default='auto'
        Peak learning rate of stages 1 and 2; 'auto' is ``0.03 * batch_size / 256``.
        Stage 3 uses ``lr / 1000``. A tuple sets each stage's rate explicitly.
    warmup_epochs : int or tuple of 3 ints, default=(10, 0, 10)
        Linear warmup per stage, clamped to the stage length.
    metric : {'euclidean', 'cosine'}, default='euclidean'
        'euclidean' is t-SimCNE's Cauchy-kernel InfoNCE; 'cosine' is SimCLR's.
    temperature : float, default=0.5
        Temperature of the cosine loss.
    projection_dim : int, default=128
        Output dimension in stage 1.
    out_dim : int, default=2
        Final output dimension.
    augmentations : Augmentations or dict, optional
        Augmentation settings; default SimCLR's. Use ``Augmentations(hflip=0)`` for
        digits and text.
    momentum, weight_decay : float, default=0.9, 5e-4
        SGD settings.
    clip_value : float, default=4.0
        Gradients are clipped to ``[-clip_value, clip_value]``.
    device : str or torch.device, default='auto'
        'auto' picks CUDA, then MPS, then CPU.
    mixed_precision : {'auto', True, False}, default='auto'
        bf16 autocast. 'auto' times a few forward+backward steps of the model in fp32 and
        in bf16 (about 2 s, once per process for each device, backbone, image shape and
        batch size) and trains in the faster; on a CPU without bf16 instructions it is
        fp32 without timing. The choice is ``precision_``. As timings vary, set True or
        False for bitwise reproducible results across processes on such machines.
    inference_batch_size : int, default=1024
        Batch size of ``transform`` and ``backbone_features``.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batches and augmentations. The same int gives the same
        embedding, bit for bit, on a CPU. On CUDA some kernels (e.g. the backward pass of
        the augmentations' ``grid_sample``) accumulate in a non-deterministic order, so
        repeated GPU runs agree only approximately.
    verbose : bool or 'auto', default='auto'
        Show a tqdm progress bar during ``fit``. 'auto' shows one in a Jupyter notebook
        (a notebook widget bar) and stays quiet elsewhere (scripts, the terminal);
        background runs (``start``) report through ``progress`` and the monitor instead.

    Attributes
    ----------
    model_ : TSimCNEModel
        The trained network.
    embedding_ : ndarray of shape (n_samples, out_dim)
        ``transform`` of the training images after ``fit``.
    history_ : list of dict
        One record per epoch: stage, stage_name, epoch, loss, lr, seconds.
    schedule_ : list of Stage
        The stages that were run.
    device_ : torch.device
        The training device.
    feature_dim_ : int
        Size of the backbone features.
    backbone_ : str or torch.nn.Module
        The backbone used: ``backbone`` with 'auto' resolved.
    seed_ : int
        The seed actually used.
    precision_ : {'bf16', 'fp32'}
        The precision of training and inference.
    precision_timings_ : dict or None
        What 'auto' measured: ``{"views", "fp32", "bf16"}`` (views per probe step and the
        best seconds per step of each), None when nothing was timed.
    """

    def __init__(self, backbone="auto", *, feature_dim=None, total_epochs=(1000, 50, 450),
                 time_budget=None, batch_size=512, lr="auto", warmup_epochs=(10, 0, 10),
                 metric="euclidean", temperature=0.5, projection_dim=128, out_dim=2,
                 augmentations=None, momentum=0.9, weight_decay=5e-4, clip_value=4.0, device="auto",
                 mixed_precision="auto", inference_batch_size=1024, random_state=None,
                 verbose="auto"):
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.total_epochs = total_epochs
        self.time_budget = time_budget
        self.batch_size = batch_size
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        self.metric = metric
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.out_dim = out_dim
        self.augmentations = augmentations
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.clip_value = clip_value
        self.device = device
        self.mixed_precision = mixed_precision
        self.inference_batch_size = inference_batch_size
        self.random_state = random_state
        self.verbose = verbose

    # -- validation ---------------------------------------------------------------------
    def _check_params(self) -> None:
        def pos_int(name, minimum=1):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}.")

        pos_int("batch_size", 2)
        pos_int("projection_dim")
        pos_int("out_dim")
        pos_int("inference_batch_size")
        if not (self.lr == "auto" or isinstance(self.lr, (numbers.Real, tuple, list))):
            raise ValueError(
                f"lr must be 'auto', a positive number or one per stage, got {self.lr!r}."
            )
        get_loss(self.metric)
        if not (isinstance(self.temperature, numbers.Real) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}.")
        if not (isinstance(self.momentum, numbers.Real) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if not (isinstance(self.weight_decay, numbers.Real) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        if not (isinstance(self.clip_value, numbers.Real) and self.clip_value > 0):
            raise ValueError(f"clip_value must be a positive number, got {self.clip_value!r}.")
        if self.time_budget is not None:
            parse_duration(self.time_budget, "time_budget")
        if not (self.verbose == "auto" or isinstance(self.verbose, bool)):
            raise ValueError(f"verbose must be True, False or 'auto', got {self.verbose!r}.")

    def _augmentations(self) -> Augmentations:
        a = self.augmentations
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

    # -- set-up ---------------------------------------------------------------------------
    def _build_model(self, in_channels: int, head_dim: int) -> TSimCNEModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            backbone, dim = build_backbone(self.backbone_, in_channels, self.feature_dim)
            model = TSimCNEModel(backbone, dim, head_dim, in_channels)
        self.feature_dim_ = dim
        return model.to(self.device_, memory_format=torch.channels_last)

    def _initialize(self, data: ImageData) -> None:
        """Fresh model, schedule and trainer for ``data``."""
        self._check_params()
        self.device_ = resolve_device(self.device)
        self.amp_ = resolve_precision(self.mixed_precision, self.device_)
        self.seed_ = _seed_from(self.random_state)
        self._augmentations()  # validates before any work
        batch_size = check_batch_size(self.batch_size, data.n_samples)
        self.schedule_ = self._make_schedule(batch_size)
        self.n_channels_ = data.n_channels
        self.image_shape_ = tuple(data.image_shape)
        self.backbone_ = _resolve_backbone(self.backbone, self.device_, self.image_shape_)
        self.model_ = self._build_model(data.n_channels, self.schedule_[0].out_dim)
        mean, std = _channel_stats(data.images)
        self.model_.mean.copy_(mean.view_as(self.model_.mean))
        self.model_.std.copy_(std.view_as(self.model_.std))
        self._choose_precision(batch_size)
        self._trainer = self._make_trainer(batch_size)
        self._trainer.generator.manual_seed(self.seed_)
        self.history_ = []
        self.embedding_ = None
        self._run = None

    def _choose_precision(self, batch_size: int) -> None:
        """Set ``amp_`` and ``precision_``. With 'auto' on a device that supports bf16,
        time both precisions on a copy of the model (once per process and setting)."""
        self.precision_timings_ = None
        if self.mixed_precision == "auto" and self.amp_:
            key = (str(self.device_), str(self.backbone_), self.n_channels_,
                   self.image_shape_, batch_size)
            self.amp_, self.precision_timings_ = measure_precision(
                self._probe_step(), key, 2 * batch_size)
        self.precision_ = "bf16" if self.amp_ else "fp32"

    def _probe_step(self):
        """A forward+backward pass of a copy of the model, for ``measure_precision``."""
        loss_fn = get_loss(self.metric, self.temperature)
        device, shape = self.device_, (self.n_channels_, *self.image_shape_)
        copies = []  # made on the first call: a cached answer needs no copy

        def step(bf16: bool, n: int) -> None:
            if not copies:
                copies.append(copy.deepcopy(self.model_).train())
            model = copies[0]
            # Its own generator: probing must not move the training's random streams.
            x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device, bf16):
                z = model(x)
            loss_fn(z).backward()
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        return step

    def _make_schedule(self, batch_size: int) -> list:
        lr = 0.03 * batch_size / 256 if self.lr == "auto" else self.lr
        return make_schedule(self.total_epochs, lr, self.warmup_epochs, self.projection_dim,
                             self.out_dim)

    def _make_trainer(self, batch_size: int) -> Trainer:
        """The Trainer for ``schedule_`` and ``model_``, with a fresh generator and, if
        asked for, a time budget over the stages in the proportions of the schedule."""
        budget = None
        if self.time_budget is not None:
            budget = TimeBudget(
                parse_duration(self.time_budget), [st.epochs for st in self.schedule_],
                costs=[1.0 if st.trains == "all" else READOUT_COST for st in self.schedule_],
            )
        return Trainer(
            self.model_, self.schedule_, batch_size, self._augmentations(),
            get_loss(self.metric, self.temperature), torch.Generator(device=self.device_),
            self.device_, self.amp_, self.momentum, self.weight_decay, self.clip_value,
            budget=budget,
        )

    def _record(self, info: StepInfo) -> None:
        if info.epoch_end:
            stage = self.schedule_[info.stage]
            self.history_.append({
                "stage": info.stage + 1, "stage_name": stage.name, "epoch": info.epoch + 1,
                "loss": info.epoch_loss, "lr": info.lr, "seconds": info.epoch_seconds,
            })

    # -- public API ---------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train from scratch on the images ``X``.

        Parameters
        ----------
        X : array-like, list of PIL images, torch Dataset or ImageData
            Anything :func:`tsimcne_widgets.data.as_images` accepts.
        y : ignored
            Present for scikit-learn compatibility; checked for length if given.

        Returns
        -------
        self : TSimCNE
        """
        data = as_images(X, labels=y)
        self._check_not_running()
        self._initialize(data)
        trainer = self._trainer
        trainer.set_images(data.images)
        show = in_jupyter_kernel() if self.verbose == "auto" else self.verbose
        bar = _progress_bar(trainer, self.schedule_) if show else None
        try:
            while not trainer.done:
                info = trainer.step()
                self._record(info)
                if bar is not None:
                    _update_bar(bar, info, self.schedule_, trainer.total_steps,
                                self.precision_)
        finally:
            trainer.pause_clock()
            if bar is not None:
                bar.close()
        self.embedding_ = self.transform(data)
        return self

    def _check_not_running(self) -> None:
        run = getattr(self, "_run", None)
        if run is not None and not run.done:
            raise RuntimeError(
                f"This estimator is already training ({run!r}); call run.stop() or "
                "run.wait() before starting or fitting again."
            )

    def start(self, X, labels=None, *, snapshot_every=0.5, restart=False, max_snapshots=200,
              snapshot_points=None, checkpoint_every=None, checkpoint_dir=None):
        """Train in a background thread and return the :class:`TrainingRun` at once.

        Parameters
        ----------
        X : array-like, list of PIL images, torch Dataset or ImageData
            The training images.
        labels : array-like, optional
            Labels for live views and metrics; they do not affect training.
        snapshot_every : float or 'epoch', default=0.5
            Seconds between snapshots (checked at batch boundaries), or 'epoch' for one
            at every epoch end. The time-based interval is stretched so that snapshots
            cost at most about 7% of training time. A snapshot is always taken at the
            start and at the end of every stage. 0 or None: only those.
        restart : bool, default=False
            Start from scratch. Otherwise a stopped run (or a loaded checkpoint)
            continues from its schedule position; the new run's ``snapshots`` and
            ``progress.elapsed`` carry on those of the stopped run in this process, and
            the stage-1 preview keeps its orientation.
        max_snapshots : int, default=200
            How many recent snapshots ``run.snapshots`` keeps.
        snapshot_points : int, optional
            Snapshot a fixed random subsample of this many points (recorded in
            ``Snapshot.indices``) instead of all, for very large data sets.
        checkpoint_every : int, optional
            Save a checkpoint every this many epochs to ``checkpoint_dir``.
        checkpoint_dir : str or Path, optional
            Folder for ``checkpoint.pt``, written atomically. Also written when the run
            is stopped or the loss becomes non-finite.

        Returns
        -------
        TrainingRun
        """
        from .run import TrainingRun

        self._check_not_running()
        if not (snapshot_every in (None, "epoch") or (
                isinstance(snapshot_every, numbers.Real) and snapshot_every >= 0)):
            raise ValueError(
                f"snapshot_every must be seconds >= 0, 'epoch' or None, got {snapshot_every!r}."
            )
        if not (isinstance(max_snapshots, numbers.Integral) and max_snapshots >= 1):
            raise ValueError(f"max_snapshots must be an int >= 1, got {max_snapshots!r}.")
        if snapshot_points is not None and not (
                isinstance(snapshot_points, numbers.Integral) and snapshot_points >= 2):
            raise ValueError(f"snapshot_points must be None or an int >= 2, got "
                             f"{snapshot_points!r}.")
        if checkpoint_every is not None:
            if not (isinstance(checkpoint_every, numbers.Integral) and checkpoint_every >= 1):
                raise ValueError(f"checkpoint_every must be an int >= 1 (epochs), got "
                                 f"{checkpoint_every!r}.")
            if checkpoint_dir is None:
                raise ValueError("checkpoint_every needs checkpoint_dir, the folder to write to.")
        data = as_images(X, labels=labels)
        previous = None  # the stopped run this one continues, if any
        if restart or getattr(self, "_trainer", None) is None:
            self._initialize(data)
        else:
            self._check_fitted(data)
            previous = getattr(self, "_run", None)
            if self._trainer.done:
                warnings.warn("The schedule is already complete; the run ends at once. "
                              "Pass restart=True to train again.", UserWarning, stacklevel=2)
        run = TrainingRun(self, data, snapshot_every=snapshot_every or 0,
                          max_snapshots=max_snapshots, snapshot_points=snapshot_points,
                          checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir,
                          previous=previous)
        self._run = run
        return run._start()

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return ``embedding_``, float32 of shape (n_samples, out_dim)."""
        return self.fit(X, y).embedding_

    def _check_fitted(self, data: ImageData) -> None:
        if getattr(self, "model_", None) is None:
            raise NotFittedError(
                "This TSimCNE instance is not fitted yet; call fit(X) or load a checkpoint."
            )
        if data.n_channels != self.n_channels_ or tuple(data.image_shape) != self.image_shape_:
            raise ValueError(
                f"X has images of {data.n_channels} channel(s) and size "
                f"{tuple(data.image_shape)}, but the model was trained on {self.n_channels_} "
                f"channel(s) of size {self.image_shape_}."
            )

    def _infer(self, X, head: bool) -> np.ndarray:
        data = as_images(X)
        self._check_fitted(data)
        return self._embed(data.images, head)

    @torch.no_grad()
    def _embed(self, images: torch.Tensor, head: bool) -> np.ndarray:
        """Eval-mode, batched forward pass that restores each module's train/eval mode,
        so that it can run between training steps without changing training."""
        model = self.model_
        modes = [m.training for m in model.modules()]
        model.eval()
        out = []
        try:
            for chunk in torch.split(images, self.inference_batch_size):
                x = chunk.to(self.device_).float().div_(255.0)
                x = x.contiguous(memory_format=torch.channels_last)
                with autocast(self.device_, self.amp_):
                    z = model(x) if head else model.features(x)
                out.append(z.float().cpu())
        finally:
            for m, mode in zip(model.modules(), modes, strict=True):
                m.training = mode
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    def transform(self, X) -> np.ndarray:
        """Embed ``X`` deterministically: no augmentation, eval mode, batched.

        Returns
        -------
        ndarray of shape (n_samples, out_dim), float32, in input order
            The network's current output (128-D if only stage 1 has run).
        """
        return self._infer(X, head=True)

    def backbone_features(self, X) -> np.ndarray:
        """Backbone features ``h``, float32 of shape (n_samples, feature_dim_) (512 for
        ResNet18 and 'small'); the input for the t-SNE and UMAP baselines."""
        return self._infer(X, head=False)

    # -- persistence --------------------------------------------------------------------
    def _params_for_saving(self) -> dict:
        params = self.get_params(deep=False)
        if isinstance(params["backbone"], torch.nn.Module):
            params["backbone"] = None
        if isinstance(params["augmentations"], Augmentations):
            params["augmentations"] = dataclasses.asdict(params["augmentations"])
        if isinstance(params["random_state"], np.random.RandomState):
            params["random_state"] = self.seed_
        if isinstance(params["device"], torch.device):
            params["device"] = str(params["device"])
        return params

    def save(self, path) -> None:
        """Save the model, optimiser, schedule position and RNG state to ``path``.

        The file holds only tensors and plain Python values, so it loads with
        ``torch.load(weights_only=True)``. It is written to a temporary file first and
        then renamed, so a crash mid-write never leaves a broken file.
        """
        if getattr(self, "model_", None) is None:
            raise NotFittedError("Nothing to save: fit the estimator first.")
        run = getattr(self, "_run", None)
        if (run is not None and run.state in ("running", "stopping")
                and threading.current_thread() is not run._thread):
            raise RuntimeError("The estimator is training; pause() or stop() the run before "
                               "saving (checkpoint_every saves from inside the run).")
        emb = self.embedding_
        custom = isinstance(self.backbone, torch.nn.Module)
        payload = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "params": self._params_for_saving(),
            "custom_backbone": custom,
            "meta": {
                "seed": self.seed_,
                "n_channels": self.n_channels_,
                "image_shape": list(self.image_shape_),
                "head_dim": self.model_.head.last.out_features,
                "batch_size": self._trainer.batch_size,
                "backbone": None if custom else self.backbone_,
            },
            "model": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
            "trainer": _to_cpu(self._trainer.state_dict()),
            "history": list(self.history_),
            "embedding": None if emb is None else torch.from_numpy(np.asarray(emb)),
        }
        _atomic_save(payload, Path(path))

    @classmethod
    def load(cls, path, *, backbone=None, device=None) -> TSimCNE:
        """Load an estimator saved with :meth:`save`.

        Only tensors and plain values are unpickled (``weights_only=True``); a file
        with arbitrary Python objects is refused with a ``ValueError``.

        Parameters
        ----------
        path : str or Path
        backbone : torch.nn.Module, optional
            Required if the model was trained with a custom backbone module: a fresh
            instance of the same architecture.
        device : str, optional
            Override the saved ``device`` parameter.
        """
        path = Path(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as exc:
            raise ValueError(
                f"Refusing to load {str(path)!r}: it is not a valid tsimcne-widgets "
                f"checkpoint, or it contains arbitrary Python objects ({exc})."
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{str(path)!r} is not a tsimcne-widgets checkpoint.")
        params = dict(payload["params"])
        if payload["custom_backbone"]:
            if not isinstance(backbone, torch.nn.Module):
                raise ValueError(
                    "This checkpoint was trained with a custom backbone; pass backbone= a "
                    "fresh nn.Module of the same architecture."
                )
            params["backbone"] = backbone
        if device is not None:
            params["device"] = device
        est = cls(**params)
        meta = payload["meta"]
        est._check_params()
        est.device_ = resolve_device(est.device)
        est.amp_ = resolve_precision(est.mixed_precision, est.device_)
        est.seed_ = meta["seed"]
        batch_size = meta["batch_size"]
        est.schedule_ = est._make_schedule(batch_size)
        est.n_channels_ = meta["n_channels"]
        est.image_shape_ = tuple(meta["image_shape"])
        # 'auto' resolves by device: load what was trained, wherever it is loaded.
        # (a custom module is params["backbone"] already, and _resolve_backbone keeps it)
        est.backbone_ = meta.get("backbone") or _resolve_backbone(
            est.backbone, est.device_, est.image_shape_)
        est.model_ = est._build_model(est.n_channels_, meta["head_dim"])
        est.model_.load_state_dict(payload["model"])
        est._choose_precision(batch_size)
        est._trainer = est._make_trainer(batch_size)
        est._trainer.load_state_dict(payload["trainer"])
        est.history_ = list(payload["history"])
        emb = payload["embedding"]
        est.embedding_ = None if emb is None else emb.numpy()
        return est


def _resolve_backbone(backbone, device: torch.device, image_shape) -> str | torch.nn.Module:
    """'auto': the CPU-sized backbone for small images on a CPU, else the paper's ResNet18."""
    if isinstance(backbone, str) and backbone == "auto":
        small = max(image_shape) <= 32
        return "fast" if device.type == "cpu" and small else "resnet18"
    return backbone


def _channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _atomic_save(payload, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _progress_bar(trainer: Trainer, schedule):
    from tqdm.auto import tqdm

    return tqdm(total=trainer.total_steps, initial=trainer.steps_done, unit="step",
                dynamic_ncols=True)


def _update_bar(bar, info: StepInfo, schedule, total_steps: int, precision: str) -> None:
    st = schedule[info.stage]
    if bar.total != total_steps:  # a time budget re-planned the stages
        bar.total = total_steps
    bar.set_description(f"stage {info.stage + 1}/{len(schedule)} {st.name}", refresh=False)
    bar.set_postfix(epoch=f"{info.epoch + 1}/{st.epochs}", loss=f"{info.loss:.3f}",
                    precision=precision, refresh=False)
    bar.update(1)
