"""Bench-only patches for training ideas that were measured and not adopted.

``fashion_recipe.py`` installs them from the configuration keys ``"_bank"``,
``"_feat_nbr"``, ``"_clean_stages"``, ``"_adam_stages"``, ``"_head_norm"`` and
``"_pixel_skip"``; none is part of the package.

- ``install_bank(size)``: a FIFO bank of the last ``size`` detached 2D embeddings (the
  first views of recent batches) joins every anchor's negatives, as in MoCo-style queues;
  more negatives make InfoNCE closer to t-SNE (Damrich et al., ICLR 2023).
- ``install_feature_neighbors(cfg)``: the positive pairs' neighbours come from the run's
  own backbone features (PCA-50, Euclidean) from stage ``cfg["from_stage"]`` on, found
  again every ``cfg["every"]`` epochs (NNCLR-style), either instead of the pixel
  neighbours (``"mix": "replace"``) or beside them (``"union"``). Prints the share of
  neighbours with the image's class at each search.
- ``install_clean_anchors(stages)``: in those stages the first view of every pair is the
  image itself, not augmented (the map is scored on clean images).
- ``install_adam(stages)``: Adam instead of SGD in those stages (parametric neighbour
  embeddings are usually trained with Adam).
- ``install_head_norm(on)``: a LayerNorm before the projection head's ReLU.
- ``install_pixel_skip(weight)``: the projection head sees the image's pixels beside the
  backbone features: a fixed PCA-50 of the training images (at the size the backbone
  sees), each part layer-normalised, the pixels' part times ``weight``.
"""

from __future__ import annotations

import numpy as np
import torch

import tsimcne_widgets._setup as setup
import tsimcne_widgets.models as models
import tsimcne_widgets.trainer as trainer_mod
from tsimcne_widgets.neighbors import pixel_neighbors

_GET_LOSS = setup.get_loss
_STEP = trainer_mod.Trainer.step
_FEATURES: dict = {"cfg": None, "labels": None}


def _banked_cauchy(size: int):
    state: dict = {"bank": None}

    def loss(z, rows=None, dof=1.0):
        if rows is not None:
            raise ValueError("the bank probe runs in one process only")
        z = z.float()
        n = z.shape[0]
        bank = state["bank"]
        if bank is not None and (bank.shape[1] != z.shape[1] or z.shape[1] != 2):
            bank = None  # a new stage: another output dimension
        cols = z if bank is None else torch.cat([z, bank])
        d2 = ((z * z).sum(1)[:, None] + (cols * cols).sum(1)[None, :]
              - 2.0 * (z @ cols.T)).clamp_min(0.0)
        logits = -dof * torch.log1p(d2 / dof)
        ar = torch.arange(n, device=z.device)
        logits[ar, ar] = float("-inf")
        value = (torch.logsumexp(logits, 1) - logits[ar, (ar + n // 2) % n]).mean()
        if z.shape[1] == 2:
            new = z.detach()[:n // 2]
            state["bank"] = new if bank is None else torch.cat([new, bank])[:size]
        return value

    return loss


def install_bank(size: int) -> None:
    """Give runs created from now on the banked loss (``size`` 0: the package's loss)."""
    def get_loss(metric, temperature=0.5):
        if metric != "euclidean" or size <= 0:
            return _GET_LOSS(metric, temperature)
        return _banked_cauchy(size)

    setup.get_loss = get_loss


@torch.no_grad()
def _feature_neighbors(trainer, k: int) -> torch.Tensor:
    model = trainer.model
    was = model.training
    model.eval()
    feats = [model.features(trainer.images[s:s + 1000].float() / 255).float().flatten(1)
             for s in range(0, len(trainer.images), 1000)]
    model.train(was)
    return pixel_neighbors(torch.cat(feats)[:, :, None, None], k)


def _step(self):
    _CLEAN["stage"] = self.stage
    cfg = _FEATURES["cfg"]
    if cfg is not None and self.neighbor_positives > 0:
        self._find_neighbors()
        if not hasattr(self, "_pixel_nbrs"):
            self._pixel_nbrs, self._feature_key = self.neighbors, None
        every = cfg.get("every", 0)
        key = (self.stage, self.epoch // every if every else 0)
        if (self.stage >= cfg.get("from_stage", 1) and key != self._feature_key
                and self.step_in_epoch == 0):
            nbrs = _feature_neighbors(self, self.n_neighbors)
            if cfg.get("mix", "replace") == "union":
                nbrs = torch.cat([self._pixel_nbrs, nbrs], 1)
            self.neighbors, self._feature_key = nbrs, key
            lab = _FEATURES["labels"]
            if lab is not None:
                same = float((lab[nbrs] == lab[:, None]).float().mean())
                print(f"  [feature neighbours at stage {self.stage + 1}, epoch "
                      f"{self.epoch}: {same:.3f} share the class]", flush=True)
    return _STEP(self)


def install_feature_neighbors(cfg: dict | None, labels=None) -> None:
    """Runs created from now on take feature neighbours per ``cfg`` (None: off)."""
    _FEATURES["cfg"] = cfg
    _FEATURES["labels"] = None if labels is None else torch.as_tensor(
        np.unique(np.asarray(labels), return_inverse=True)[1])
    trainer_mod.Trainer.step = _step


# --- Adam instead of SGD in some stages ---
_CONFIGURE = trainer_mod.Trainer._configure_stage
_ADAM: dict = {"stages": ()}


def _configure_stage(self):
    _CONFIGURE(self)
    if self.stage in _ADAM["stages"]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.schedule[self.stage].lr,
                                          fused=self._fused)


def install_adam(stages) -> None:
    """Runs created from now on train the 0-based ``stages`` with Adam (the stage's rate
    and schedule, no weight decay) instead of SGD."""
    _ADAM["stages"] = tuple(stages or ())
    trainer_mod.Trainer._configure_stage = _configure_stage


# --- clean (un-augmented) anchors in some stages ---
_AUGMENT = trainer_mod.augment
_CLEAN: dict = {"stages": (), "stage": None}


def _augment(images, cfg, generator, out_size=None):
    x = _AUGMENT(images, cfg, generator, out_size)
    if _CLEAN["stage"] in _CLEAN["stages"] and out_size is None:
        half = x.shape[0] // 2
        x[:half] = images[:half].float() / 255.0 if images.dtype == torch.uint8 \
            else images[:half].float()
    return x


def install_clean_anchors(stages) -> None:
    """Runs created from now on keep the first views clean in the 0-based ``stages``."""
    _CLEAN["stages"] = tuple(stages or ())
    trainer_mod.augment = _augment
    trainer_mod.Trainer.step = _step


# --- a LayerNorm in the projection head ---
_HEAD_INIT = models.ProjectionHead.__init__


def _head_init_norm(self, feature_dim: int, out_dim: int, hidden_dim: int = 1024):
    _HEAD_INIT(self, feature_dim, out_dim, hidden_dim)
    self.hidden = torch.nn.Sequential(torch.nn.Linear(feature_dim, hidden_dim),
                                      torch.nn.LayerNorm(hidden_dim), torch.nn.ReLU())


def install_head_norm(on: bool) -> None:
    """Models created from now on put a LayerNorm between the head's hidden layer and its
    ReLU (it stops the runaway scale and dying units of the Adam-trained probe head in
    ``cached_head_probe.py``)."""
    models.ProjectionHead.__init__ = _head_init_norm if on else _HEAD_INIT


# --- the pixels beside the features, into the projection head ---
_MODEL_FORWARD = models.TSimCNEModel.forward
_SET_IMAGES = trainer_mod.Trainer.set_images
_SKIP: dict = {"weight": 0.0}
_BASE_HEAD_INIT = models.ProjectionHead.__init__
SKIP_DIM = 50


def _skip_head_init(self, feature_dim: int, out_dim: int, hidden_dim: int = 1024):
    _BASE_HEAD_INIT(self, feature_dim + SKIP_DIM, out_dim, hidden_dim)


def _pixels_part(model, x: torch.Tensor) -> torch.Tensor:
    if model.input_size is not None and tuple(x.shape[-2:]) != model.input_size:
        x = torch.nn.functional.interpolate(x.float(), size=model.input_size, mode="bilinear",
                                            antialias=True)
    if not hasattr(model, "skip_axes"):  # the precision probe's copy, made before the data
        d = x[0].numel()
        model.register_buffer("skip_mean", torch.zeros(d, device=x.device))
        model.register_buffer("skip_axes", torch.eye(d, SKIP_DIM, device=x.device))
    p = (x.flatten(1).float() - model.skip_mean) @ model.skip_axes
    return torch.nn.functional.layer_norm(p, p.shape[1:])


def _skip_forward(self, x):
    f = self.features(x)
    f = torch.nn.functional.layer_norm(f.float(), f.shape[1:])
    h = torch.cat([f, _SKIP["weight"] * _pixels_part(self, x)], 1)
    hidden = self.head.hidden(h)
    with torch.autocast(device_type=x.device.type, enabled=False):
        return self.head.last(hidden.float())


def _skip_set_images(self, images):
    _SET_IMAGES(self, images)
    x = self.images.flatten(1).float() / 255.0
    mean = x.mean(0)
    xc = x - mean
    _, vecs = torch.linalg.eigh((xc.T @ xc).double() / max(1, len(x) - 1))
    model = self.model
    if not hasattr(model, "skip_mean"):
        model.register_buffer("skip_mean", mean)
        model.register_buffer("skip_axes", vecs[:, -SKIP_DIM:].float().contiguous())
    else:
        model.skip_mean.copy_(mean)
        model.skip_axes.copy_(vecs[:, -SKIP_DIM:].float())


def install_pixel_skip(weight: float) -> None:
    """Models and trainers created from now on feed the head the pixels' PCA-50 beside the
    features (``weight`` 0: the package's model). Wraps whichever head ``__init__`` is
    installed (``install_head_norm`` first)."""
    global _BASE_HEAD_INIT
    if models.ProjectionHead.__init__ is not _skip_head_init:
        _BASE_HEAD_INIT = models.ProjectionHead.__init__
    _SKIP["weight"] = float(weight)
    on = weight > 0
    models.ProjectionHead.__init__ = _skip_head_init if on else _BASE_HEAD_INIT
    models.TSimCNEModel.forward = _skip_forward if on else _MODEL_FORWARD
    trainer_mod.Trainer.set_images = _skip_set_images if on else _SET_IMAGES
