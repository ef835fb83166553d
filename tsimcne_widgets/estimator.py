"""The t-SimCNE estimator, with a scikit-learn interface."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator

from . import checkpoint
from ._jupyter import in_jupyter_kernel
from ._runbase import check_not_running
from ._setup import (
    attach_distributed,
    augmentations_of,
    build,
    check_fitted,
    check_params,
    distributed_context,
    seed_from,
)
from .data import ImageData, as_images, check_batch_size
from .inference import embed_images
from .threads import check_n_threads, thread_control
from .trainer import StepInfo, train_to_end

__all__ = ["TSimCNE"]


class TSimCNE(BaseEstimator):
    """t-SimCNE: contrastive learning of a 2D embedding of images.

    SimCLR with a Cauchy similarity on Euclidean distances, trained in three stages:
    (1) the whole network with a 128-D output, (2) only a new 2-D last layer, (3) the
    whole network again at a 1000x lower learning rate (Böhm, Berens & Kobak, ICLR 2023).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default='auto'
        'auto' is 'fast' on a CPU with images of at most 32x32 pixels, else 'resnet18'
        (the paper's: ResNet18 with a 3x3 stride-1 stem and no max-pool); 'resnet34' ...
        'resnet152' the other ResNets with that stem; 'fast' a CNN sized for CPUs (about
        4x the speed of 'small', a compact CNN for tiny images); or a module that maps
        ``(B, C, H, W)`` images to ``(B, feature_dim)`` features. Named backbones take
        grayscale images as one channel.
    feature_dim : int, optional
        Output size of a custom backbone module. Ignored for named backbones.
    total_epochs : int or tuple of 3 ints, default=(1000, 50, 450)
        Epochs of the three stages. A single int trains one stage, the whole network
        directly with the ``out_dim`` output. With ``time_budget``, only their proportions
        count.
    time_budget : float or str, optional
        Train for this long instead of a fixed number of epochs: seconds, or a string such
        as ``"90s"``, ``"10min"`` or ``"1h 30min"``. The stages' epochs are set in the
        proportions of ``total_epochs`` from the measured throughput and re-planned at
        every epoch end; each keeps at least one epoch. Paused and stopped time does not
        count. ``schedule_`` holds the final plan. See :mod:`tsimcne_widgets.budget`.
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
    dof : float, default=1.0
        Kernel ``(1 + d^2 / dof)^-dof`` of the map's stages (stage 1 keeps 1, t-SimCNE's
        Cauchy kernel); below 1, heavier tails separate clusters more (Kobak et al., 2019).
    projection_dim : int, default=128
        Output dimension in stage 1.
    out_dim : int, default=2
        Final output dimension.
    input_size : int or (int, int), optional
        The (height, width) the network sees. Training images are resized to it once
        (antialiased bilinear) before training, and ``transform`` resizes its input the
        same way, so the images themselves keep their size (and the gallery its
        thumbnails). On a CPU, 28x28 images seen at 14x14 ran about 3 times the epochs in
        the same time, for a better map in minutes. None: the images' own size.
    augmentations : Augmentations or dict, optional
        Augmentation settings; default SimCLR's. Use ``Augmentations(hflip=0)`` for
        digits and text.
    neighbor_positives : float, default=0.0
        Share of the positive pairs, in [0, 1], that pair a view of an image with a view of
        one of its ``n_neighbors`` nearest neighbours in ``neighbor_space`` (Euclidean, on
        a PCA to 50 dimensions; found once, on the training device, when training starts)
        instead of with a second view of itself. 0 is t-SimCNE as published; 1 is close to
        a parametric t-SNE of the pixels with augmented views. A mix adds the
        neighbourhoods that t-SNE and UMAP use to the augmentations' invariances
        (contrastive neighbour embeddings: Damrich et al., ICLR 2023). See
        ``cpu_recipe()`` for a measured setting.
    n_neighbors : int, default=15
        Neighbours per image for ``neighbor_positives``.
    neighbor_space : {'pixels', 'hog'}, default='pixels'
        Where ``neighbor_positives`` finds neighbours: 'pixels', the images at
        ``input_size``; 'hog', histograms of oriented gradients of the full-size images
        in grey (:func:`~tsimcne_widgets.hog.hog_features`), which compare shapes
        rather than grey levels. On Fashion-MNIST, 81 % of the HOG neighbours share the
        image's class, 75 % of the pixel neighbours. Images need at least 14x14 pixels.
    momentum, weight_decay : float, default=0.9, 5e-4
        SGD settings.
    clip_value : float, default=4.0
        Gradients are clipped to ``[-clip_value, clip_value]``.
    device : str or torch.device, default='auto'
        'auto' picks CUDA, then MPS, then CPU.
    mixed_precision : {'auto', True, False}, default='auto'
        bf16 autocast. 'auto' times a few forward+backward steps of the model in fp32 and
        in bf16, each in the channels_last and the contiguous memory layout (about 2 s,
        once per process for each device, backbone, image shape and batch size) and
        trains in the fastest (within 5 %, channels_last and then fp32 are preferred);
        on a device without bf16 it is fp32 and channels_last without timing. The
        choices are ``precision_`` and ``memory_format_``. As timings vary, set True or
        False (fp32 or bf16, channels_last) for bitwise reproducible results across
        processes on such machines.
    n_threads : 'auto' or int, default='auto'
        CPU threads of a training step. 'auto' times real steps at a few counts when
        training starts and again when they slow down or every 30 s or more (at most
        about 2% of the time), and keeps the fastest, so that training adapts when other
        work takes cores. An int fixes the count. Shown in the progress bar and the
        monitor; ignored on a GPU. See :mod:`tsimcne_widgets.threads`.
    inference_batch_size : int, default=1024
        Batch size of ``transform`` and ``backbone_features``.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batches and augmentations. The same int gives the same
        embedding, bit for bit, on a CPU with a fixed ``n_threads`` (another count sums in
        another order). On CUDA some kernels accumulate in a non-deterministic order, so
        repeated GPU runs agree only approximately.
    verbose : bool or 'auto', default='auto'
        Show a tqdm progress bar during ``fit``. 'auto' shows one in a Jupyter notebook
        (a notebook widget bar) and stays quiet elsewhere (scripts, the terminal);
        background runs (``start``) report through ``progress`` and the monitor instead.
    distributed : {'auto', True, False}, default='auto'
        Train as one of several processes (``torchrun``): 'auto' when a
        ``torch.distributed`` process group is initialised, True also initialises one
        from torchrun's environment, False never. ``batch_size`` is then the global batch,
        and each step contrasts all of it as one device would; rank 0 alone writes and
        shows progress. See :mod:`tsimcne_widgets.distributed`.
    torch_compile : bool or dict, default=False
        ``torch.compile`` the training step; a dict holds its arguments (``mode``,
        ``backend``, ``fullgraph``, ``dynamic``, ``options``). Each stage's first step
        compiles, which the progress bar and the monitor show; ``compile_seconds_``.

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
    memory_format_ : {'channels_last', 'contiguous'}
        The layout of the images and weights in training and inference.
    precision_timings_ : dict or None
        What 'auto' measured: ``"views"`` (views per probe step) and the best seconds per
        step of each setting, keyed ``'fp32/channels_last'``, ``'bf16/contiguous'``, ...;
        None when nothing was timed.
    n_threads_ : int or None
        The CPU threads of the last training step (see ``n_threads``); None on a GPU.
    compile_seconds_ : float
        Seconds spent in the steps that compiled (0 without ``torch_compile``).
    thread_timings_ : dict of int to float
        Seconds per step at each thread count in the last probe of ``n_threads='auto'``.
    run_ : TrainingRun or None
        The latest background run of :meth:`start`; None after ``fit`` or ``load``.
    world_size_, rank_ : int
        Number of processes of the last ``fit`` or ``start`` and this one's rank (1 and
        0 without ``distributed``).
    """

    def __init__(self, backbone="auto", *, feature_dim=None, total_epochs=(1000, 50, 450),
                 time_budget=None, batch_size=512, lr="auto", warmup_epochs=(10, 0, 10),
                 metric="euclidean", temperature=0.5, dof=1.0, projection_dim=128, out_dim=2,
                 input_size=None, augmentations=None, neighbor_positives=0.0, n_neighbors=15,
                 neighbor_space="pixels", momentum=0.9, weight_decay=5e-4,
                 clip_value=4.0, device="auto", mixed_precision="auto", n_threads="auto",
                 inference_batch_size=1024, random_state=None, verbose="auto",
                 distributed="auto", torch_compile=False):
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.total_epochs = total_epochs
        self.time_budget = time_budget
        self.batch_size = batch_size
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        self.metric = metric
        self.temperature = temperature
        self.dof = dof
        self.projection_dim = projection_dim
        self.out_dim = out_dim
        self.input_size = input_size
        self.augmentations = augmentations
        self.neighbor_positives = neighbor_positives
        self.n_neighbors = n_neighbors
        self.neighbor_space = neighbor_space
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.clip_value = clip_value
        self.device = device
        self.mixed_precision = mixed_precision
        self.n_threads = n_threads
        self.inference_batch_size = inference_batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.distributed = distributed
        self.torch_compile = torch_compile

    # -- set-up ---------------------------------------------------------------------------
    def _initialize(self, data: ImageData) -> None:
        """Fresh model, schedule and trainer for ``data``."""
        check_params(self)
        check_n_threads(self.n_threads)
        augmentations = augmentations_of(self)  # validates before any work
        dist = distributed_context(self)
        self._trainer = build(
            self, seed=seed_from(self.random_state), n_channels=data.n_channels,
            image_shape=data.image_shape, augmentations=augmentations,
            batch_size=check_batch_size(self.batch_size, data.n_samples), images=data.images,
            dist=dist)
        self._control_threads()
        self.history_ = []
        self.embedding_ = None
        self.run_ = None

    def _restore(self, payload: dict) -> None:
        """Set up as saved in a checkpoint's ``payload``."""
        check_params(self)
        check_n_threads(self.n_threads)
        self._trainer = checkpoint.restore(self, payload, augmentations_of(self))
        self._control_threads()
        self.run_ = None

    def _control_threads(self) -> None:
        self._trainer.thread_control = thread_control(self.n_threads, self._trainer.device)
        self.n_threads_ = None
        self.thread_timings_ = {}
        self.compile_seconds_ = 0.0

    def _record(self, info: StepInfo) -> None:
        self.compile_seconds_ = self._trainer.compile_seconds
        threads = self._trainer.thread_control
        if threads is not None:
            self.n_threads_ = threads.threads
        if info.epoch_end:
            if threads is not None:
                self.thread_timings_ = dict(threads.timings)
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
        check_not_running(getattr(self, "run_", None))
        self._initialize(data)
        self._trainer.set_images(data.images)
        show = in_jupyter_kernel() if self.verbose == "auto" else self.verbose
        train_to_end(self._trainer, self._record, bar=show, precision=self.precision_)
        self.embedding_ = self.transform(data)
        return self

    def start(self, X, labels=None, *, snapshot_every=0.5, restart=False, max_snapshots=200,
              snapshot_points=None, checkpoint_every=None, checkpoint_dir=None,
              snapshot_dir=None):
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
        snapshot_dir : str or Path, optional
            Also write every snapshot, the progress and the end of the run to this
            folder, so that ``Explorer.watch(snapshot_dir, images)`` can follow the run
            from another process; the run then obeys pause, resume and stop commands in
            its ``control.json``. A run from scratch replaces the folder's earlier
            snapshots, a resumed one appends. Writing errors are warned about and kept in
            ``run.errors``; they never stop training. See :mod:`tsimcne_widgets.run_dir`.

        Returns
        -------
        TrainingRun
        """
        from .run import RunHooks, check_start_options, start_run

        check_not_running(getattr(self, "run_", None))
        check_start_options(snapshot_every, max_snapshots, snapshot_points, checkpoint_every,
                            checkpoint_dir, snapshot_dir)
        data = as_images(X, labels=labels)
        previous = None  # the stopped run this one continues, if any
        if restart or getattr(self, "_trainer", None) is None:
            self._initialize(data)
        else:
            check_fitted(self, data)
            attach_distributed(self, self._trainer)
            previous = getattr(self, "run_", None)
            if self._trainer.done:
                warnings.warn("The schedule is already complete; the run ends at once. "
                              "Pass restart=True to train again.", UserWarning, stacklevel=2)
        hooks = RunHooks(
            trainer=self._trainer, embed=lambda images: self._embed(images, head=True),
            on_step=self._record, on_finish=self._set_embedding, save=self._write_checkpoint,
            seed=self.seed_, precision=self.precision_)
        self.run_ = start_run(hooks, data, estimator=self, snapshot_every=snapshot_every or 0,
                              max_snapshots=max_snapshots, snapshot_points=snapshot_points,
                              checkpoint_every=checkpoint_every,
                              checkpoint_dir=checkpoint_dir, previous=previous,
                              snapshot_dir=snapshot_dir)
        return self.run_

    def _set_embedding(self, embedding: np.ndarray) -> None:
        # The run's finish hook: the training images' embedding once the schedule is done.
        self.embedding_ = embedding

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return ``embedding_``, float32 of shape (n_samples, out_dim)."""
        return self.fit(X, y).embedding_

    def _infer(self, X, head: bool) -> np.ndarray:
        data = as_images(X)
        check_fitted(self, data)
        return self._embed(data.images, head)

    def _embed(self, images: torch.Tensor, head: bool) -> np.ndarray:
        return embed_images(self.model_, images, device=self.device_, amp=self.amp_,
                            batch_size=self.inference_batch_size, head=head,
                            channels_last=self.memory_format_ == "channels_last")

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
    def save(self, path) -> None:
        """Save the model, optimiser, schedule position and RNG state to ``path``.

        The file holds only tensors and plain Python values, so it loads with
        ``torch.load(weights_only=True)``. It is written to a temporary file first and
        then renamed, so a crash mid-write never leaves a broken file. See
        :mod:`tsimcne_widgets.checkpoint`.
        """
        checkpoint.check_savable(self)
        self._write_checkpoint(path)

    def _write_checkpoint(self, path) -> None:
        # Also the run's save hook: from the training thread, between two steps.
        checkpoint.write(self, self._trainer, path)

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

        Returns
        -------
        TSimCNE
            Fitted as saved; ``start`` continues from the saved schedule position.
        """
        payload = checkpoint.read(path)
        est = cls(**checkpoint.params_of(payload, backbone=backbone, device=device))
        est._restore(payload)
        return est
