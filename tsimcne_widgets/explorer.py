"""Explorer: from data to a live, controllable t-SimCNE view in one call."""

from __future__ import annotations

import threading

import ipywidgets as W
import numpy as np

from .data import as_images
from .estimator import TSimCNE
from .gallery import SelectionGallery
from .monitor import TrainingMonitor
from .scatter import EmbeddingScatter

__all__ = ["Explorer"]


def _pixel_pca(images, n_fit: int = 5000, seed: int = 0) -> np.ndarray:
    """A quick first picture before training: a 2D PCA of the raw pixels."""
    from sklearn.decomposition import PCA

    flat = images.reshape(images.shape[0], -1).numpy().astype(np.float32)
    rng = np.random.default_rng(seed)
    fit = flat[rng.choice(len(flat), min(n_fit, len(flat)), replace=False)]
    pca = PCA(2, random_state=seed).fit(fit)
    return pca.transform(flat).astype(np.float32)


class Explorer(W.VBox):
    """A training monitor above a live scatter of the same data, with a gallery of the
    selected images and a slider through the snapshot history.

    ``Explorer(images, labels=None, **tsimcne_params)`` or
    ``Explorer(estimator, images, labels=None)``; ``images`` may also be passed by
    keyword. :meth:`watch` shows a run that trains in another process instead.

    Parameters
    ----------
    images : anything :func:`tsimcne_widgets.as_images` accepts
    labels : array-like, optional
        Colours, legend, gallery captions and the live kNN accuracy.
    metadata : pandas.DataFrame, optional
        Shown in tooltips and carried into ``selected_dataframe()``. Defaults to a
        ``file`` column when the images were read from files (``ImageData.files``).
    start_kwargs : dict, optional
        Passed to ``TSimCNE.start`` (``snapshot_every``, ``checkpoint_dir``, ...).
    scatter_kwargs : dict, optional
        Passed to ``EmbeddingScatter``.
    **tsimcne_params
        Parameters of a new :class:`TSimCNE` when no estimator is given.

    Attributes
    ----------
    estimator : TSimCNE
    images : ImageData
        The images as :func:`~tsimcne_widgets.as_images` converted them.
    monitor : TrainingMonitor
    scatter : EmbeddingScatter
    gallery : SelectionGallery
    history : ipywidgets.IntSlider
        Frame of the snapshot history shown; ``follow`` keeps it on the newest.
    """

    def __init__(self, *args, images=None, labels=None, metadata=None, start_kwargs=None,
                 scatter_kwargs=None, **tsimcne_params):
        if images is not None:
            args = (*args, images)
        if args and isinstance(args[0], TSimCNE):
            if len(args) != 2:
                raise TypeError("Explorer(estimator, images, ...) needs the images as well.")
            if tsimcne_params:
                raise TypeError(f"unexpected parameters with an estimator: "
                                f"{sorted(tsimcne_params)}; set them on the estimator.")
            estimator, images = args
        elif len(args) == 1:
            estimator, images = TSimCNE(**tsimcne_params), args[0]
        else:
            raise TypeError("use Explorer(images, labels=None, **params) or "
                            "Explorer(estimator, images, labels=None).")
        self.estimator = estimator
        self.images = as_images(images, labels=labels)
        self.start_kwargs = dict(start_kwargs or {})
        fitted = getattr(estimator, "embedding_", None)
        xy = fitted if fitted is not None and len(fitted) == self.images.n_samples and (
            fitted.shape[1] == 2) else _pixel_pca(self.images.images)
        self._build(xy, metadata, scatter_kwargs, starter=self.start)
        live = getattr(estimator, "run_", None)
        if live is not None and not live.done:
            self._attach(live)  # re-display while training: follow the running run

    @classmethod
    def watch(cls, path, images, labels=None, metadata=None, poll_interval=0.5, *,
              max_snapshots=200, control=True, scatter_kwargs=None) -> Explorer:
        """An Explorer of a run that trains in another process (a script, torchrun,
        Slurm), following its run directory.

        The training side passes ``snapshot_dir=path`` to ``TSimCNE.start``. The scatter
        animates as snapshots appear; selection, the gallery, the history slider and
        export work as for a local run. Pause and Stop reach the training process
        through the directory's ``control.json``; Start is disabled. Closing the
        Explorer stops watching, never the training. See
        :class:`~tsimcne_widgets.watch.WatchedRun`.

        Parameters
        ----------
        path : str or Path
            The run directory; it may not exist yet (the run has not started).
        images : anything :func:`tsimcne_widgets.as_images` accepts
            The training images, in the order the training process got them.
        labels : array-like, optional
        metadata : pandas.DataFrame, optional
        poll_interval : float, default=0.5
            Seconds between two looks at the directory.
        max_snapshots : int, default=200
            How many recent snapshots the history slider keeps.
        control : bool, default=True
            False: watch only, with Pause and Stop disabled.
        scatter_kwargs : dict, optional
            Passed to ``EmbeddingScatter``.

        Returns
        -------
        Explorer
            Its ``run`` is the :class:`~tsimcne_widgets.watch.WatchedRun`; ``estimator``
            is None.

        Raises
        ------
        ValueError
            If the directory's ``meta.json`` counts another number of images. Without one
            yet, snapshots that do not fit are skipped with a warning.
        """
        from .watch import WatchedRun

        data = as_images(images, labels=labels)
        run = WatchedRun(path, images=data, poll_interval=poll_interval,
                         max_snapshots=max_snapshots, control=control)
        self = cls.__new__(cls)
        self.estimator = None
        self.images = data
        self.start_kwargs = {}
        self._build(_pixel_pca(data.images), metadata, scatter_kwargs, starter=None)
        self._attach(run)
        run.start()  # after the widgets' callbacks: they see every snapshot
        return self

    def _build(self, xy, metadata, scatter_kwargs, starter) -> None:
        if metadata is None and self.images.files is not None:
            import pandas as pd

            metadata = pd.DataFrame({"file": self.images.files})
        self.run = None
        self._lock = threading.Lock()
        self.scatter = EmbeddingScatter(
            xy, labels=self.images.labels, images=self.images, metadata=metadata,
            class_names=self.images.class_names, **(scatter_kwargs or {}))
        self.gallery = SelectionGallery(self.images).link(self.scatter)
        self.monitor = TrainingMonitor(estimator=self.estimator, images=self.images,
                                       labels=self.images.labels, starter=starter)
        self.history = W.IntSlider(0, 0, 0, description="snapshot",
                                   continuous_update=True, layout=W.Layout(width="420px"))
        self.follow = W.Checkbox(True, description="follow live", indent=False)
        self.play = W.Play(interval=150, min=0, max=0, description="replay")
        W.jslink((self.play, "value"), (self.history, "value"))
        W.jslink((self.play, "max"), (self.history, "max"))
        self.history.observe(self._on_slider, names="value")
        super().__init__(children=[
            self.monitor,
            W.HBox([self.play, self.history, self.follow]),
            W.HBox([self.scatter, self.gallery], layout=W.Layout(width="100%")),
        ])
        # The scatter takes what the gallery leaves; its plot follows its width (scatter.js).
        if not (scatter_kwargs or {}).get("width"):
            self.scatter.layout = W.Layout(flex="1 1 0", min_width="0")
        self.gallery.layout = W.Layout(flex="0 1 360px", min_width="200px")
        self.add_class("tsw-explorer")

    # -- training ---------------------------------------------------------------------
    def start(self, **kwargs):
        """Begin (or resume) training in the background; returns the ``TrainingRun``."""
        if self.estimator is None:
            raise RuntimeError("This Explorer watches a run in another process (watch()); "
                               "it cannot start training.")
        run = self.estimator.start(self.images, labels=self.images.labels,
                                   **{**self.start_kwargs, **kwargs})
        self._attach(run)
        return run

    def _attach(self, run) -> None:
        self.run = run
        if self.monitor.run is not run:
            self.monitor.attach(run)
        run.on("snapshot", self._on_snapshot)
        if run.latest is not None:
            self._on_snapshot(run.latest)

    def _on_snapshot(self, snap) -> None:
        n = len(self.run.snapshots)
        with self._lock:
            self._live = True
            self.history.max = max(0, n - 1)
            if self.follow.value:
                self.history.value = self.history.max
            self._live = False
        if self.follow.value:
            self.scatter.update(snap)

    def _on_slider(self, change) -> None:
        if getattr(self, "_live", False) or self.run is None:
            return
        self.follow.value = change["new"] >= self.history.max
        self.show_snapshot(change["new"])

    def show_snapshot(self, i: int) -> None:
        """Show frame ``i`` of the snapshot history (no retraining)."""
        snaps = self.run.snapshots if self.run is not None else []
        if not snaps:
            return
        i = int(np.clip(i, 0, len(snaps) - 1))
        self.scatter.update(snaps[i], animate=True)

    # -- results ------------------------------------------------------------------------
    @property
    def embedding(self) -> np.ndarray | None:
        """The final 2D embedding once training has finished, else None. For a watched
        run: the last snapshot's positions once it has finished (all points only)."""
        if self.estimator is None:
            last = self.run.latest if self.run is not None else None
            ok = last is not None and self.run.state == "finished" and last.indices is None
            return np.array(last.xy) if ok and last.kind == "embedding" else None
        return getattr(self.estimator, "embedding_", None)

    def selected_dataframe(self):
        """Selected rows: index, x, y, label and the metadata columns."""
        return self.scatter.selected_dataframe()

    def close(self):
        # A watched run's thread only serves this Explorer: stop watching (not training).
        run = getattr(self, "run", None)
        if run is not None and getattr(self, "estimator", True) is None:
            run.close()
        super().close()

    def wait(self, timeout=None):
        """Wait for the current run and return the estimator (see ``TrainingRun.wait``);
        for a watched run, the :class:`~tsimcne_widgets.watch.WatchedRun`.

        The widgets stay live meanwhile: Pause, Stop and lasso selections take effect while
        the cell waits.
        """
        if self.run is None:
            raise RuntimeError("Nothing is training; call start() first.")
        return self.run.wait(timeout)
