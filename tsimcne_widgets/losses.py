"""Contrastive losses for t-SimCNE: Cauchy (Euclidean) InfoNCE and cosine InfoNCE.

Both take the embeddings of 2B views laid out as ``[a_1..a_B, b_1..b_B]``, where ``a_i`` and
``b_i`` are two views of the same image, and return the InfoNCE loss averaged over both
directions of every positive pair. Everything is computed in log space in float32.
"""

from __future__ import annotations

import torch

__all__ = ["cauchy_infonce", "cosine_infonce", "get_loss"]


def _infonce_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """InfoNCE from a (2B, 2B) matrix of log-similarities; the diagonal is ignored."""
    n = logits.shape[0]
    b = n // 2
    eye = torch.eye(n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(eye, float("-inf"))
    # The partner of view i is view i + B (mod 2B).
    pos_idx = (torch.arange(n, device=logits.device) + b) % n
    pos = logits[torch.arange(n, device=logits.device), pos_idx]
    return (torch.logsumexp(logits, dim=1) - pos).mean()


def cauchy_infonce(z: torch.Tensor) -> torch.Tensor:
    """t-SimCNE loss: InfoNCE with the Cauchy kernel ``q = 1 / (1 + ||a - b||^2)``.

    Parameters
    ----------
    z : torch.Tensor of shape (2B, d)
        Embeddings of the two views, first all first views then all second views.

    Returns
    -------
    torch.Tensor
        Scalar ``mean_i [-log q(z_i, z_i') + log sum_{k != i} q(z_i, z_k)]``.
    """
    z = z.float()
    sq = (z * z).sum(1)
    # ||a-b||^2 via the Gram matrix; clamp tiny negatives from cancellation.
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
    return _infonce_from_logits(-torch.log1p(d2))


def cosine_infonce(z: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss: InfoNCE on cosine similarity divided by ``temperature``.

    Parameters
    ----------
    z : torch.Tensor of shape (2B, d)
        Embeddings of the two views, first all first views then all second views.
    temperature : float, default=0.5
        Softmax temperature ``tau``.

    Returns
    -------
    torch.Tensor
        Scalar ``mean_i [-s(z_i, z_i') + log sum_{k != i} exp(s(z_i, z_k))]`` with
        ``s = cos / tau``.
    """
    z = torch.nn.functional.normalize(z.float(), dim=1)
    return _infonce_from_logits((z @ z.T) / temperature)


def get_loss(metric: str, temperature: float = 0.5):
    """Return the loss function for ``metric`` ('euclidean' or 'cosine')."""
    if metric == "euclidean":
        return cauchy_infonce
    if metric == "cosine":
        return lambda z: cosine_infonce(z, temperature)
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
