"""One image item to pixels: a uint8 ``(C, H, W)`` array from an array, a tensor, a PIL image
or a file, and resizing.

:mod:`tsimcne_widgets.ingest` reads many items with these, and
:mod:`tsimcne_widgets.data` checks single arrays with them.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_CHANNELS = (1, 3, 4)
# PIL modes kept as one grey channel; every other mode is converted to RGB.
_GRAY_MODES = frozenset({"1", "L", "LA"})
# Images resized per chunk so the float copy of a large data set never lives in memory at once.
_RESIZE_CHUNK = 1024
_ITEM_SHAPE_HINT = "(height, width), (height, width, channels) or (channels, height, width)"
_DTYPE_HINT = (
    "expected uint8, bool, another integer type with values in [0, 255], "
    "or float with values in [0, 1]"
)


def _describe(obj: Any) -> str:
    """Short description of an object for error messages."""
    if isinstance(obj, np.ndarray | torch.Tensor):
        return f"{type(obj).__name__} of dtype {obj.dtype} and shape {tuple(obj.shape)}"
    if isinstance(obj, str | numbers.Number):
        text = repr(obj) if isinstance(obj, str) else str(obj)
        return f"{type(obj).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    return type(obj).__name__


def _to_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """CPU numpy view of an array or tensor (numpy has no bfloat16, so such floats widen)."""
    if isinstance(x, np.ndarray):
        return x
    x = x.detach().cpu()
    if x.is_floating_point() and x.dtype not in (torch.float16, torch.float32, torch.float64):
        x = x.float()
    return x.resolve_conj().numpy()


def _channels_last(first: int, last: int) -> bool | None:
    """Whether the last (not the first) candidate axis holds channels; None if neither can."""
    first_ok, last_ok = first in _CHANNELS, last in _CHANNELS
    if first_ok and last_ok:
        # Ambiguous only for images at most 4 px wide: prefer 1 or 3 channels, then NCHW.
        return first == 4 and last != 4
    if first_ok or last_ok:
        return last_ok
    return None


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Validate pixel values and convert them to uint8."""
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        return arr
    if kind == "b":
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.size == 0:
        return arr.astype(np.uint8)
    if kind in "iu":
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{name} has integer values in [{lo}, {hi}]; expected values in [0, 255]."
            )
        return arr.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values.")
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 1:
            raise ValueError(
                f"{name} has float values in [{lo:g}, {hi:g}]; float images must be in [0, 1] "
                "(divide by 255 if they are in [0, 255])."
            )
        # float16 has too few bits to round x * 255 exactly.
        arr = arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
        return np.rint(arr * 255).astype(np.uint8)
    raise TypeError(f"{name} has dtype {arr.dtype}; {_DTYPE_HINT}.")


def _item_to_chw(img: Any, name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Convert one PIL image, array or tensor to a uint8 (C, H, W) array with C in 1, 3,
    resized to `size` (height, width) if given (see :func:`_resize_one`)."""
    if isinstance(img, Image.Image):
        img = img.convert("L" if img.mode in _GRAY_MODES else "RGB")
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        arr = np.asarray(img)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if not isinstance(img, np.ndarray | torch.Tensor):
        raise TypeError(
            f"{name} must be a PIL image, numpy array, torch tensor or file path, "
            f"got {_describe(img)}."
        )
    arr = _to_numpy(img)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3:
        last = _channels_last(arr.shape[0], arr.shape[2])
        if last is None:
            raise ValueError(
                f"{name} has shape {arr.shape}: expected 1, 3 or 4 channels in the first "
                "or last axis."
            )
        if last:
            arr = arr.transpose(2, 0, 1)
    else:
        raise ValueError(f"{name} must have shape {_ITEM_SHAPE_HINT}, got shape {arr.shape}.")
    arr = _to_uint8(arr[:3], name)
    if size is not None and arr.shape[1:] != size:
        arr = _resize_one(arr, size)
    return arr


def check_size(value: Any, name: str) -> tuple[int, int] | None:
    """``value`` (None, an int or a (height, width) pair of ints >= 1) as a pair or None;
    a ``ValueError`` naming the argument ``name`` otherwise."""
    if value is None:
        return None
    size = (value, value) if isinstance(value, numbers.Integral) else value
    if (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)
        and min(size) >= 1
    ):
        return int(size[0]), int(size[1])
    raise ValueError(
        f"{name} must be None, a positive int or a (height, width) pair of positive ints, "
        f"got {value!r}."
    )


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 NCHW images (on the CPU) with antialiased bilinear interpolation."""
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for start in range(0, len(images), _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        chunk = F.interpolate(chunk, size=size, mode="bilinear", antialias=True)
        out[start : start + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _resize_one(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one uint8 (C, H, W) array (C in 1, 3) with Pillow's antialiased bilinear filter.

    It agrees with :func:`resize_images` (torch's antialiased bilinear, made to match Pillow) to
    within one grey level, and runs without torch's thread pool, whose start-up per small
    image costs more than the resize, and without the GIL (so threads read in parallel).
    """
    img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    out = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def _is_path(obj: Any) -> bool:
    return isinstance(obj, str | os.PathLike)


def _decode_file(path: str | os.PathLike, size: tuple[int, int] | None) -> np.ndarray:
    """Decode one image file to a uint8 (C, H, W) array, resized to `size` if given.

    With `size`, JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale as long as the result
    stays at least twice the target size, which the antialiased resize then reduces; only
    one full-size (or draft) image is ever in memory.
    """
    with Image.open(path) as img:
        if size is not None and img.format == "JPEG":
            img.draft(None, (2 * size[1], 2 * size[0]))
        img.load()
        return _item_to_chw(img, os.fspath(path), size)
