"""Histograms of oriented gradients (HOG; Dalal & Triggs, CVPR 2005), in torch.

A fixed, training-free description of an image by the directions of its edges, cell by
cell, normalised over blocks of cells so that contrast does not count. Used to find
neighbour positive pairs (``TSimCNE(neighbor_space='hog')``) and as a baseline's input
(``MethodComparison.from_estimator(..., methods=("tsne:hog",))``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["hog_features", "CELLS", "MIN_SIDE"]

CELLS = 7  # cells per side by default: 4x4-pixel cells at 28x28
MIN_SIDE = 2 * CELLS  # the smallest side the default HOG accepts (2x2-pixel cells)


def _hog_chunk(x: torch.Tensor, cell: int, bins: int) -> torch.Tensor:
    """HOG of a float (n, 1, H, W) chunk in [0, 1]: (n, 4 * bins * (H//cell - 1) * ...)."""
    p = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]
    gy = p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]
    mag = (gx * gx + gy * gy).sqrt()
    # Unsigned orientation, split linearly between its two nearest bins.
    b = torch.remainder(torch.atan2(gy, gx), math.pi) * (bins / math.pi)
    lo = b.floor()
    w = b - lo
    lo = lo.long() % bins
    hist = torch.zeros(x.shape[0], bins, *x.shape[2:], device=x.device)
    hist.scatter_add_(1, lo, mag * (1 - w)).scatter_add_(1, (lo + 1) % bins, mag * w)
    c = torch.nn.functional.avg_pool2d(hist, cell)
    h, wd = c.shape[2] - 1, c.shape[3] - 1
    # Overlapping 2x2 blocks of cells, each normalised: robust to local contrast.
    blocks = torch.cat([c[:, :, i:h + i, j:wd + j] for i in (0, 1) for j in (0, 1)], 1)
    return (blocks / (blocks.norm(dim=1, keepdim=True) + 1e-3)).flatten(1)


def hog_features(images: torch.Tensor, *, cells: int = CELLS, bins: int = 9,
                 gamma: float = 0.5, chunk: int = 2048, device=None) -> torch.Tensor:
    """Histograms of oriented gradients of each image (grey), on the images' device.

    Parameters
    ----------
    images : torch.Tensor
        (N, C, H, W) images, uint8 (0-255) or float in [0, 1]; colour is averaged to grey.
        Each side needs at least ``2 * cells`` pixels.
    cells : int, default=7
        Cells per side (cells of ``min(H, W) // cells`` pixels: 4x4 at 28x28); blocks of
        2x2 cells, stride one cell.
    bins : int, default=9
        Orientation bins over 180 degrees.
    gamma : float, default=0.5
        Power applied to the intensities first (square-root gamma compression).
    chunk : int, default=2048
        Images processed at once (memory: about ``chunk * bins * H * W`` floats).
    device : torch.device or str, optional
        Where to compute, one chunk at a time (the images stay where they are); default
        the images' device.

    Returns
    -------
    torch.Tensor
        (N, 4 * bins * (cells - 1) ** 2) float32 on ``device``; 1,296 features with the
        defaults.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}.")
    cell = min(images.shape[2:]) // cells
    if cell < 2:
        raise ValueError(f"HOG with {cells} cells per side needs images of at least "
                         f"{2 * cells}x{2 * cells} pixels, got {tuple(images.shape[2:])}.")
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    h, w = cell * cells, cell * cells  # crop to whole cells, centred
    top, left = (images.shape[2] - h) // 2, (images.shape[3] - w) // 2
    out = []
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk, :, top:top + h, left:left + w]
        x = x.to(device if device is not None else images.device).float() / scale
        x = x.mean(1, keepdim=True).clamp_min(0).pow(gamma)
        out.append(_hog_chunk(x, cell, bins))
    return torch.cat(out)
