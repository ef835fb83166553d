"""SimCLR augmentations as batched tensor operations on the training device.

Every view draws its own random parameters from one ``torch.Generator``; the whole
batch is then transformed at once: crop, flip and rotation are one ``grid_sample``
with a per-view affine matrix, and the colour operations are per-view broadcast
arithmetic. No PIL and no Python loop over images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augmentations", "augment", "sample_params"]


@dataclass(frozen=True)
class Augmentations:
    """Augmentation settings; the defaults are SimCLR's, as used by t-SimCNE.

    Parameters
    ----------
    crop_scale : (float, float), default=(0.2, 1.0)
        Range of the crop area as a fraction of the image area.
    crop_ratio : (float, float), default=(3/4, 4/3)
        Range of the crop aspect ratio (width / height), sampled log-uniformly.
    hflip : float, default=0.5
        Probability of a horizontal flip. Set to 0 for digits and text.
    vflip : float, default=0.0
        Probability of a vertical flip (useful for microscopy).
    rotation : float, default=0.0
        Maximum rotation in degrees; each view is rotated uniformly in
        ``[-rotation, rotation]``. Uncovered corners are black.
    brightness, contrast, saturation, hue : float, default=0.4, 0.4, 0.4, 0.1
        Colour jitter strengths, as in torchvision's ``ColorJitter``. Applied in
        this fixed order. Saturation and hue act only on 3-channel images.
    jitter_p : float, default=0.8
        Probability that a view gets colour jitter.
    grayscale_p : float, default=0.2
        Probability that a 3-channel view is turned to grayscale.
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 0.0
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self):
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}.")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio}.")
        for name in ("hflip", "vflip", "jitter_p", "grayscale_p"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
        for name in ("brightness", "contrast", "saturation", "rotation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue!r}.")


def _uniform(n, lo, hi, gen, device):
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _bernoulli(n, p, gen, device):
    return torch.rand(n, generator=gen, device=device) < p


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
    return (x * w[None, :, None, None]).sum(1, keepdim=True)


def _rgb_to_hsv(x):
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-8), torch.zeros_like(maxc))
    dc = delta.clamp_min(1e-8)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return h, s, maxc


def _hsv_to_rgb(h, s, v):
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # Rows: the 6 hue sectors; pick each channel by sector index.
    choices = torch.stack(
        [
            torch.stack([v, q, p, p, t, v]),
            torch.stack([t, v, v, q, p, p]),
            torch.stack([p, p, t, v, v, q]),
        ]
    )  # (3, 6, B, H, W)
    idx = i[None, None].expand(3, 1, *i.shape)
    return choices.gather(1, idx)[:, 0].transpose(0, 1)


def sample_params(n: int, cfg: Augmentations, generator: torch.Generator,
                  device=None) -> dict[str, torch.Tensor]:
    """Draw independent augmentation parameters for ``n`` views.

    Returns a dict of 1-D tensors of length ``n``: crop ``scale`` (area fraction),
    ``ratio`` (aspect), crop centre ``cx``/``cy`` in [0, 1], flip signs ``fx``/``fy``,
    ``angle`` in degrees, ``jitter`` (bool), ``brightness``/``contrast``/``saturation``
    factors (1 where jitter is off), ``hue`` shift (0 where off) and ``gray`` (bool).
    """
    g, dev = generator, device if device is not None else generator.device
    scale = _uniform(n, cfg.crop_scale[0], cfg.crop_scale[1], g, dev)
    ratio = torch.exp(_uniform(n, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]),
                               g, dev))
    p = {"scale": scale, "ratio": ratio,
         "u": torch.rand(n, generator=g, device=dev), "v": torch.rand(n, generator=g, device=dev),
         "fx": torch.where(_bernoulli(n, cfg.hflip, g, dev), -1.0, 1.0),
         "fy": torch.where(_bernoulli(n, cfg.vflip, g, dev), -1.0, 1.0),
         "angle": _uniform(n, -cfg.rotation, cfg.rotation, g, dev)}
    on = _bernoulli(n, cfg.jitter_p, g, dev)
    p["jitter"] = on
    for name in ("brightness", "contrast", "saturation"):
        s = getattr(cfg, name)
        f = _uniform(n, max(0.0, 1 - s), 1 + s, g, dev)
        p[name] = torch.where(on, f, torch.ones_like(f))
    hue = _uniform(n, -cfg.hue, cfg.hue, g, dev)
    p["hue"] = torch.where(on, hue, torch.zeros_like(hue))
    p["gray"] = _bernoulli(n, cfg.grayscale_p, g, dev)
    return p


def _crop_flip_rotate(x, p, out_size):
    n, _, h, w = x.shape
    scale, ratio = p["scale"], p["ratio"]
    # Crop width and height as fractions of the image, clamped to fit (instead of
    # torchvision's rejection sampling).
    cw = torch.sqrt(scale * ratio * h / w).clamp(max=1.0)
    ch = torch.sqrt(scale * w / (ratio * h)).clamp(max=1.0)
    cx = (1 - cw) * p["u"] + cw / 2
    cy = (1 - ch) * p["v"] + ch / 2
    ang = p["angle"] * (math.pi / 180)
    cos, sin = torch.cos(ang), torch.sin(ang)
    sx, sy = cw * p["fx"], ch * p["fy"]
    # Output grid -> input grid in normalised coords; rotate in pixel units so that
    # non-square images are not sheared.
    theta = torch.empty(n, 2, 3, device=x.device)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = -sin * sy * (h / w)
    theta[:, 1, 0] = sin * sx * (w / h)
    theta[:, 1, 1] = cos * sy
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 2] = 2 * cy - 1
    grid = F.affine_grid(theta, [n, x.shape[1], *out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _color(x, p, cfg: Augmentations):
    c = x.shape[1]

    def col(t):
        return t[:, None, None, None]

    x = (x * col(p["brightness"])).clamp(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * col(p["contrast"]) + mean).clamp(0, 1)
    if c == 3:
        g = _gray(x)
        x = ((x - g) * col(p["saturation"]) + g).clamp(0, 1)
        if cfg.hue > 0:
            hh, ss, vv = _rgb_to_hsv(x)
            hh = (hh + p["hue"][:, None, None]) % 1.0
            x = _hsv_to_rgb(hh, ss, vv)
        x = torch.where(col(p["gray"]), _gray(x).expand_as(x), x)
    return x


def augment(images: torch.Tensor, cfg: Augmentations, generator: torch.Generator,
            out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Augment a batch of images, each view with its own random parameters.

    Parameters
    ----------
    images : torch.Tensor of shape (B, C, H, W)
        uint8 images (or floats in [0, 1]) on the training device.
    cfg : Augmentations
        The augmentation settings.
    generator : torch.Generator
        Source of randomness, on the same device as ``images``.
    out_size : (int, int), optional
        Output (height, width); defaults to the input size.

    Returns
    -------
    torch.Tensor of shape (B, C, H_out, W_out)
        float32 images in [0, 1].
    """
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    out_size = tuple(out_size or x.shape[-2:])
    p = sample_params(x.shape[0], cfg, generator, x.device)
    x = _crop_flip_rotate(x, p, out_size)
    return _color(x, p, cfg)
