"""Contrastive losses for t-SimCNE: Cauchy (Euclidean) InfoNCE and cosine InfoNCE.

Both take the embeddings of 2B views laid out as ``[a_1..a_B, b_1..b_B]``, where ``a_i`` and
``b_i`` are two views of the same image, and return the InfoNCE loss averaged over both
directions of every positive pair. Everything is computed in log space in float32.

With ``rows``, only the terms of those anchors (against all 2B views) are computed, summed
and divided by 2B: the partial losses of disjoint ``rows`` add up to the full loss, which is
how several processes share one global batch (:mod:`tsimcne_widgets.distributed`).
"""

from __future__ import annotations

import torch

__all__ = ["cauchy_infonce", "cosine_infonce", "get_loss"]


def _infonce_from_logits(logits: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE from log-similarities of the anchors ``rows`` (all 2B if None) to all 2B
    views, a (len(rows), 2B) matrix; each anchor's similarity to itself is ignored."""
    n = logits.shape[1]
    b = n // 2
    full = rows is None
    if full:
        rows = torch.arange(n, device=logits.device)
        self_mask = torch.eye(n, dtype=torch.bool, device=logits.device)
    else:
        self_mask = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
        self_mask[torch.arange(len(rows), device=logits.device), rows] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    # The partner of view i is view i + B (mod 2B).
    pos = logits[torch.arange(len(rows), device=logits.device), (rows + b) % n]
    terms = torch.logsumexp(logits, dim=1) - pos
    return terms.mean() if full else terms.sum() / n


def cauchy_infonce(z: torch.Tensor, rows: torch.Tensor | None = None,
                   dof: float = 1.0) -> torch.Tensor:
    """t-SimCNE loss: InfoNCE with the Cauchy kernel ``q = 1 / (1 + ||a - b||^2)``.

    Parameters
    ----------
    z : torch.Tensor of shape (2B, d)
        Embeddings of the two views, first all first views then all second views.
    rows : torch.Tensor of int, optional
        Compute only these anchors' terms, summed and divided by 2B.
    dof : float, default=1.0
        Degrees of freedom ``a`` of the heavy-tailed kernel
        ``q = (1 + ||a - b||^2 / a)^-a`` (Kobak et al., 2019); 1 is the Cauchy kernel,
        smaller values have heavier tails and separate clusters more.

    Returns
    -------
    torch.Tensor
        Scalar ``mean_i [-log q(z_i, z_i') + log sum_{k != i} q(z_i, z_k)]``.
    """
    z = z.float()
    sq = (z * z).sum(1)
    a, sq_a = (z, sq) if rows is None else (z[rows], sq[rows])
    # ||a-b||^2 via the Gram matrix; clamp tiny negatives from cancellation.
    d2 = (sq_a[:, None] + sq[None, :] - 2.0 * (a @ z.T)).clamp_min(0.0)
    if dof == 1:
        return _infonce_from_logits(-torch.log1p(d2), rows)
    return _infonce_from_logits(-dof * torch.log1p(d2 / dof), rows)


def cosine_infonce(z: torch.Tensor, temperature: float = 0.5,
                   rows: torch.Tensor | None = None) -> torch.Tensor:
    """SimCLR's NT-Xent loss: InfoNCE on cosine similarity divided by ``temperature``.

    Parameters
    ----------
    z : torch.Tensor of shape (2B, d)
        Embeddings of the two views, first all first views then all second views.
    temperature : float, default=0.5
        Softmax temperature ``tau``.
    rows : torch.Tensor of int, optional
        Compute only these anchors' terms, summed and divided by 2B.

    Returns
    -------
    torch.Tensor
        Scalar ``mean_i [-s(z_i, z_i') + log sum_{k != i} exp(s(z_i, z_k))]`` with
        ``s = cos / tau``.
    """
    z = torch.nn.functional.normalize(z.float(), dim=1)
    a = z if rows is None else z[rows]
    return _infonce_from_logits((a @ z.T) / temperature, rows)


def get_loss(metric: str, temperature: float = 0.5):
    """Return the loss function ``loss(z, rows=None, dof=1.0)`` for ``metric``
    ('euclidean' or 'cosine'; the cosine loss has no kernel, so it accepts only
    ``dof=1``)."""
    if metric == "euclidean":
        return cauchy_infonce

    if metric == "cosine":
        def cosine(z, rows=None, dof=1.0):
            if dof != 1:
                raise ValueError(f"the cosine loss has no kernel dof, got dof={dof!r}.")
            return cosine_infonce(z, temperature, rows)

        return cosine
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
