"""Saving and loading a :class:`TSimCNE`: the checkpoint file format.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``: the parameters, what the set-up needs to rebuild the
model (:func:`tsimcne_widgets._setup.build`), the weights, the trainer's position and
random state, the history and the embedding. Files are written atomically.

With several processes (:mod:`tsimcne_widgets.distributed`) only rank 0 writes, and the
file is the same as one process's: the unwrapped model's weights, the global batch size and
the position in the schedule, which do not depend on the number of processes. A checkpoint
therefore resumes with any number of processes that divides its batch size, or in one.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import torch

from ._atomic import atomic_write
from ._setup import build
from .augment import Augmentations
from .trainer import Trainer

__all__ = ["FORMAT", "FORMAT_VERSION", "check_savable", "write", "read", "params_of",
           "restore"]

FORMAT = "tsimcne-widgets-checkpoint"
FORMAT_VERSION = 1


def check_savable(est) -> None:
    """Refuse to save an estimator that is not fitted or is training right now."""
    from sklearn.exceptions import NotFittedError

    if getattr(est, "model_", None) is None:
        raise NotFittedError("Nothing to save: fit the estimator first.")
    run = getattr(est, "run_", None)
    if run is not None and run.state in ("running", "stopping"):
        raise RuntimeError("The estimator is training; pause() or stop() the run before "
                           "saving (checkpoint_every saves from inside the run).")


def write(est, trainer: Trainer, path) -> None:
    """Write ``est`` (fitted) and its ``trainer``'s state to ``path``, atomically; on
    ranks other than 0 of a distributed run, nothing (all ranks hold the same state)."""
    if trainer.dist is not None and not trainer.dist.is_main:
        return
    emb = est.embedding_
    custom = isinstance(est.backbone, torch.nn.Module)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "params": _params_for_saving(est),
        "custom_backbone": custom,
        "meta": {
            "seed": est.seed_,
            "n_channels": est.n_channels_,
            "image_shape": list(est.image_shape_),
            "head_dim": est.model_.head.last.out_features,
            "batch_size": trainer.batch_size,  # the global batch with several processes
            "world_size": 1 if trainer.dist is None else trainer.dist.world_size,
            "backbone": None if custom else est.backbone_,
        },
        "model": {k: v.detach().cpu() for k, v in est.model_.state_dict().items()},
        "trainer": _to_cpu(trainer.state_dict()),
        "history": list(est.history_),
        "embedding": None if emb is None else torch.from_numpy(np.asarray(emb)),
    }
    atomic_save(payload, Path(path))


def read(path) -> dict:
    """The payload of the checkpoint at ``path``; ``ValueError`` for anything else,
    including files with arbitrary Python objects (never unpickled)."""
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a tsimcne-widgets checkpoint.")
    return payload


def params_of(payload: dict, *, backbone=None, device=None) -> dict:
    """The estimator parameters saved in ``payload``, with a custom ``backbone`` module
    and a ``device`` override put in."""
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
    return params


def restore(est, payload: dict, augmentations: Augmentations) -> Trainer:
    """Rebuild ``est`` (made from :func:`params_of`) as saved; return its Trainer."""
    meta = payload["meta"]
    trainer = build(est, seed=meta["seed"], n_channels=meta["n_channels"],
                    image_shape=meta["image_shape"], batch_size=meta["batch_size"],
                    augmentations=augmentations, head_dim=meta["head_dim"],
                    backbone=meta.get("backbone"), model_state=payload["model"])
    trainer.load_state_dict(payload["trainer"])
    est.history_ = list(payload["history"])
    emb = payload["embedding"]
    est.embedding_ = None if emb is None else emb.numpy()
    return trainer


def _params_for_saving(est) -> dict:
    params = est.get_params(deep=False)
    if isinstance(params["backbone"], torch.nn.Module):
        params["backbone"] = None
    if isinstance(params["augmentations"], Augmentations):
        params["augmentations"] = dataclasses.asdict(params["augmentations"])
    if isinstance(params["random_state"], np.random.RandomState):
        params["random_state"] = est.seed_
    if isinstance(params["device"], torch.device):
        params["device"] = str(params["device"])
    if params.get("distributed") is True:
        # How a run was launched is not part of the model: a checkpoint loads in a single
        # process too, and under torchrun 'auto' finds the process group.
        params["distributed"] = "auto"
    return params


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def atomic_save(payload, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write`: a crash mid-write never leaves a broken
    checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))
