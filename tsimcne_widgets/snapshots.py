"""Snapshots: 2D pictures of a run in progress, and how stage 1's 128-D output becomes 2D.

A snapshot is a plain record, shared by t-SimCNE runs and the baselines: where it was
taken (stage, epoch, step), the float32 ``(N, 2)`` positions, the loss and its kind,
``"preview"`` (a PCA of stage 1's high-dimensional output) or ``"embedding"`` (the
model's own 2D output).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Snapshot", "StablePCA"]


@dataclass(frozen=True)
class Snapshot:
    """One frame of a run.

    Every producer (:class:`TrainingRun` and :class:`BaselineRun`) counts progress in
    the same four words:

    - **stage**: a phase of the method with its own settings, 1-based. t-SimCNE: its
      training stages (pretrain, 2D readout, fine-tune); t-SNE: 1 early exaggeration,
      2 the main optimisation; UMAP and PCA: 1.
    - **epoch**: progress within the stage. t-SimCNE: the epoch under way or just
      completed (1-based), 0 before the stage's first step; t-SNE: the iterations done
      within the phase; UMAP: its epochs done; PCA: 0.
    - **step**: optimiser updates since the start of the whole run, over all stages
      and resumes: t-SimCNE batches, t-SNE iterations, UMAP epochs. Never decreases
      within a run.
    - **iteration**: one optimiser update of a baseline (a t-SNE gradient step, a UMAP
      epoch); :class:`BaselineProgress` counts them within the phase, as ``epoch`` here.

    (``StepInfo.step_in_epoch`` and ``Progress.step_in_stage`` are counts within an epoch
    and within a stage, named so.)

    Attributes
    ----------
    xy : ndarray of shape (n_points, 2), float32
        Positions. Read-only.
    stage, epoch, step : int
        Where the frame was taken, as above.
    loss : float
        Mean loss of the epoch so far (NaN if none yet, and for baselines).
    kind : {'preview', 'embedding'}
        'preview' is a 2D PCA of a high-dimensional output, 'embedding' is 2D output.
    indices : ndarray of int64 or None
        Which points ``xy`` holds when a subsample was requested; None means all.
    time : float
        ``time.time()`` when taken.
    """

    xy: np.ndarray
    stage: int
    epoch: int
    step: int
    loss: float
    kind: str
    indices: np.ndarray | None = None
    time: float = field(default_factory=time.time)

    def __post_init__(self):
        self.xy.setflags(write=False)


class StablePCA:
    """2D PCA of successive outputs, rotated to match the previous frame.

    Each frame's PCA axes are aligned to the previous frame's 2D positions by
    orthogonal Procrustes (rotation or reflection), so that points do not flip or spin
    between frames of a live view.
    """

    def __init__(self):
        self._prev: np.ndarray | None = None

    def reset(self, previous: np.ndarray | None = None) -> None:
        """Forget the last frame, or align the next one to ``previous`` (a frame of 2D
        positions, e.g. the last preview of a run that is resumed)."""
        self._prev = None if previous is None else np.asarray(previous, dtype=np.float64)

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z, dtype=np.float64)
        Zc = Z - Z.mean(0)
        # Top-2 right singular vectors of the centred data are the PCA axes.
        _, _, vt = np.linalg.svd(Zc, full_matrices=False)
        xy = Zc @ vt[:2].T
        if self._prev is not None and self._prev.shape == xy.shape:
            u, _, wt = np.linalg.svd(xy.T @ self._prev)
            xy = xy @ (u @ wt)
        self._prev = xy
        return xy.astype(np.float32)
