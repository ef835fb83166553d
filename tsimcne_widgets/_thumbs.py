"""Hover thumbnails: one small PNG made on demand for one index, never the whole image set."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from .data import ImageData


def thumbnail_png(images: ImageData, index: int, size: int = 64) -> bytes:
    """PNG bytes of image `index`, scaled (nearest neighbour for upscaling) to fit `size`."""
    img = images.images[int(index)].numpy()  # (C, H, W) uint8
    arr = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    pil = Image.fromarray(np.ascontiguousarray(arr))
    h, w = arr.shape[:2]
    scale = size / max(h, w)
    if scale != 1:
        resample = Image.NEAREST if scale > 1 else Image.LANCZOS
        pil = pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample)
    out = io.BytesIO()
    pil.save(out, format="PNG")
    return out.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
