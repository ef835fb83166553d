"""Inference: the model's output for uint8 images, batched, in eval mode, and safe to run
between two training steps (``transform``, snapshots, the final embedding)."""

from __future__ import annotations

import numpy as np
import torch

from ._device import autocast, memory_format

__all__ = ["embed_images"]


@torch.no_grad()
def embed_images(model: torch.nn.Module, images: torch.Tensor, *, device: torch.device,
                 amp: bool, batch_size: int, head: bool = True,
                 channels_last: bool = True) -> np.ndarray:
    """Eval-mode, batched forward pass that restores each module's train/eval mode.

    Parameters
    ----------
    model : TSimCNEModel
        The network; ``model.features`` gives the backbone features.
    images : torch.Tensor
        uint8 ``(N, C, H, W)``, on any device.
    device : torch.device
        Where the model is.
    amp : bool
        bf16 autocast, as in training.
    batch_size : int
        Images per forward pass.
    head : bool, default=True
        The model's output; False: the backbone features.
    channels_last : bool, default=True
        The images' layout, as in training (the model's weights are in it).

    Returns
    -------
    ndarray of shape (N, d), float32, in input order
    """
    modes = [m.training for m in model.modules()]
    model.eval()
    out = []
    try:
        for chunk in torch.split(images, batch_size):
            x = chunk.to(device).float().div_(255.0)
            x = x.contiguous(memory_format=memory_format(channels_last))
            with autocast(device, amp):
                z = model(x) if head else model.features(x)
            out.append(z.float().cpu())
    finally:
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode
    return torch.cat(out).numpy().astype(np.float32, copy=False)
