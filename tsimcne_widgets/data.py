"""Turn user image data into one canonical form: a uint8 ``(N, C, H, W)`` tensor plus labels.

Everything downstream (augmentations, training, plotting) only ever sees an :class:`ImageData`,
so all input checking and conversion lives here.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from .labels import MAX_FLOAT_CLASSES, encode_labels

__all__ = ["ImageData", "as_images", "check_batch_size", "load_digits", "load_torchvision"]

_CHANNELS = (1, 3, 4)
# PIL modes kept as one grey channel; every other mode is converted to RGB.
_GRAY_MODES = frozenset({"1", "L", "LA"})
# Images resized per chunk so the float copy of a large data set never lives in memory at once.
_RESIZE_CHUNK = 1024
_SHAPE_HINT = (
    "(n_samples, height, width), (n_samples, height, width, channels) "
    "or (n_samples, channels, height, width)"
)
_ITEM_SHAPE_HINT = "(height, width), (height, width, channels) or (channels, height, width)"
_DTYPE_HINT = (
    "expected uint8, bool, another integer type with values in [0, 255], "
    "or float with values in [0, 1]"
)


@dataclass(frozen=True, eq=False, repr=False)
class ImageData:
    """Images and optional labels in the canonical form used by the package.

    Parameters
    ----------
    images : torch.Tensor
        uint8 tensor of shape ``(n_samples, channels, height, width)`` on the CPU, with
        1 or 3 channels.
    labels : numpy.ndarray or None
        int64 class codes in ``[0, n_classes)``, shape ``(n_samples,)``.
    class_names : tuple of str or None
        ``class_names[k]`` is the name of code ``k``.
    """

    images: torch.Tensor
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise TypeError(f"images must be a uint8 torch.Tensor, got {_describe(images)}.")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                "images must have shape (n_samples, channels, height, width) with 1 or 3 "
                f"channels, got shape {tuple(images.shape)}."
            )
        if images.device.type != "cpu" or not images.is_contiguous():
            raise ValueError("images must be a contiguous tensor on the CPU.")
        labels = self.labels
        if labels is not None:
            if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
                raise TypeError(f"labels must be an int64 numpy array, got {_describe(labels)}.")
            if labels.shape != (len(images),):
                raise ValueError(
                    f"labels must have shape ({len(images)},), got shape {labels.shape}."
                )
        if self.class_names is not None:
            if labels is None:
                raise ValueError("class_names given without labels.")
            if not isinstance(self.class_names, tuple):
                raise TypeError(
                    f"class_names must be a tuple of str, got {_describe(self.class_names)}."
                )
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise ValueError(
                    f"labels must be codes in [0, {len(self.class_names)}), got values in "
                    f"[{labels.min()}, {labels.max()}]."
                )

    @property
    def n_samples(self) -> int:
        """Number of images."""
        return int(self.images.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels: 1 (grey) or 3 (RGB)."""
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int]:
        """Image size as ``(height, width)``."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        n_classes = None if self.class_names is None else len(self.class_names)
        return (
            f"ImageData(n_samples={self.n_samples}, n_channels={self.n_channels}, "
            f"image_shape={self.image_shape}, n_classes={n_classes})"
        )


def as_images(
    X: Any,
    labels: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    resize: int | tuple[int, int] | None = None,
    name: str = "X",
) -> ImageData:
    """Validate images in any supported form and convert them to :class:`ImageData`.

    Parameters
    ----------
    X : ImageData, array-like, sequence of images or torch Dataset
        Accepted forms:

        - :class:`ImageData`: returned as is, unless `labels`, `class_names` or `resize`
          are given, which then override.
        - numpy array or torch tensor of shape ``(N, H, W)`` (grey), ``(N, H, W, C)`` or
          ``(N, C, H, W)`` with ``C`` in 1, 3 or 4 (the alpha channel is dropped). The
          channel axis is axis 1 if only it holds 1, 3 or 4 entries, axis 3 if only it does.
          If both do (images at most 4 pixels wide), axis 1 is chosen, unless axis 1 has 4
          entries and axis 3 has 1 or 3.
        - list or tuple of PIL images, numpy arrays or tensors; each array is
          ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with the same rule. PIL images in mode
          ``"1"``, ``"L"`` or ``"LA"`` give one channel, all others are converted to RGB.
          If some images are grey and some colour, the grey ones are repeated to RGB.
        - any map-style dataset (``__getitem__`` and ``__len__``, e.g. torchvision data sets
          or ``ImageFolder``) whose items are an image or an ``(image, label, ...)`` tuple.
          Its labels are used when `labels` is None, and its ``classes`` as class names.

        Values must be uint8, bool (True becomes 255), integers in [0, 255] or floats in
        [0, 1], which are scaled by 255 and rounded to the nearest integer.
    labels : array-like of shape (N,), optional
        Class labels: ints, strings, bools, whole-number floats, or a pandas
        Categorical/Series, by the rule of :mod:`tsimcne_widgets.labels` that the plots
        share (other floats are continuous and refused here). They are stored as codes
        ``0 .. n_classes - 1``. Integer labels with `class_names` are used as the codes
        themselves; string labels with `class_names` are looked up in it; a categorical
        keeps its categories. Otherwise the codes index the sorted unique labels, whose
        string forms become the class names (labels 3, 5, 7 give codes 0, 1, 2 named
        "3", "5", "7").
    class_names : sequence of str, optional
        Name of each class code; see `labels`.
    resize : int or (int, int), optional
        Resize every image to ``(height, width)`` (an int gives a square) with antialiased
        bilinear interpolation. Required when a sequence or dataset has images of
        different sizes.
    name : str, default="X"
        Name of the argument in error messages.

    Returns
    -------
    ImageData
        The images as a contiguous uint8 ``(N, C, H, W)`` CPU tensor (it may share memory
        with `X`), with the encoded labels.

    Raises
    ------
    TypeError
        If `X`, its dtype or `labels` are of an unsupported type, or `labels` are
        continuous.
    ValueError
        If shapes, values, sizes or label lengths are invalid.
    """
    size = _check_resize(resize)
    item_labels = None
    if isinstance(X, ImageData):
        if labels is None and class_names is None and size in (None, X.image_shape):
            return X
        images = X.images
        if labels is None and class_names is None:
            labels, class_names = X.labels, X.class_names
        elif labels is None:
            labels = X.labels
    elif isinstance(X, torch.Tensor | np.ndarray) and not _is_object_array(X):
        images = torch.from_numpy(_array_to_nchw(_to_numpy(X), name))
    elif isinstance(X, list | tuple) or _is_object_array(X):
        images = _stack_items(len(X), X.__getitem__, name, size, allow_labels=False)[0]
    elif _is_dataset(X):
        images, item_labels = _stack_items(len(X), X.__getitem__, name, size, allow_labels=True)
        if labels is None and item_labels is not None:
            labels = item_labels
            if class_names is None and getattr(X, "classes", None) is not None:
                class_names = [str(c) for c in X.classes]
    else:
        raise TypeError(
            f"{name} must be a numpy array, torch tensor, list of PIL images or arrays, "
            f"torch Dataset or ImageData, got {_describe(X)}."
        )

    n = int(images.shape[0])
    if n < 2:
        raise ValueError(f"{name} must contain at least 2 images, got {n}.")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} has empty images of size {tuple(images.shape[2:])}.")
    if size is not None and tuple(images.shape[2:]) != size:
        images = _resize(images, size)
    codes, names = _encode_labels(labels, n, class_names)
    return ImageData(images.contiguous(), codes, names)


def check_batch_size(batch_size: Any, n_samples: int, *, name: str = "batch_size") -> int:
    """Validate a batch size and clamp it to the number of samples.

    Parameters
    ----------
    batch_size : int
        Requested batch size, at least 1.
    n_samples : int
        Number of samples in the data set.
    name : str, default="batch_size"
        Name of the argument in messages.

    Returns
    -------
    int
        ``min(batch_size, n_samples)``; a :class:`UserWarning` is issued when clamping.
    """
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
        raise TypeError(f"{name} must be a positive int, got {_describe(batch_size)}.")
    if batch_size < 1:
        raise ValueError(f"{name} must be a positive int, got {batch_size}.")
    if batch_size > n_samples:
        warnings.warn(
            f"{name}={batch_size} is larger than the number of samples ({n_samples}); "
            f"using {name}={n_samples}.",
            UserWarning,
            stacklevel=2,
        )
        return int(n_samples)
    return int(batch_size)


def load_digits() -> ImageData:
    """Load scikit-learn's 8x8 handwritten digits (1797 images, shipped offline).

    Returns
    -------
    ImageData
        Shape ``(1797, 1, 8, 8)``; pixel values 0..16 scaled to 0..255, labels 0..9 named
        ``"0"`` .. ``"9"``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    images = torch.from_numpy(np.ascontiguousarray(pixels[:, None]))
    return ImageData(images, digits.target.astype(np.int64), tuple(str(d) for d in range(10)))


_TORCHVISION = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "mnist": "MNIST",
    "fashionmnist": "FashionMNIST",
    "stl10": "STL10",
}


def load_torchvision(
    name: str, root: str | os.PathLike, *, train: bool = True, download: bool = False
) -> ImageData:
    """Load a torchvision image data set as :class:`ImageData`.

    Parameters
    ----------
    name : str
        One of "cifar10", "cifar100", "mnist", "fashionmnist", "stl10"; case, "-" and "_"
        are ignored (so "CIFAR-10" and "fashion-mnist" work).
    root : str or path-like
        Folder holding (or receiving) the data set files.
    train : bool, default=True
        Load the training split, else the test split (STL-10: labelled "train"/"test").
    download : bool, default=False
        Download the files into `root` if they are missing (needs internet access).

    Returns
    -------
    ImageData
        The raw uint8 images, labels and the data set's class names.

    Raises
    ------
    ValueError
        If `name` is unknown.
    FileNotFoundError
        If the files are missing and `download` is False.
    ConnectionError
        If the download fails.
    """
    from torchvision import datasets

    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {_describe(name)}.")
    key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _TORCHVISION:
        raise ValueError(f"Unknown data set name={name!r}; accepted: {', '.join(_TORCHVISION)}.")
    title = _TORCHVISION[key]
    root = os.path.expanduser(os.fspath(root))
    cls = getattr(datasets, title)
    if key == "stl10":
        split = {"split": "train" if train else "test"}
    else:
        split = {"train": train}
    try:
        ds = cls(root, download=download, **split)
    except (RuntimeError, OSError) as exc:
        if not download:
            raise FileNotFoundError(
                f"{title} not found (or corrupted) under root={root!r}. "
                "Pass download=True to download it (needs internet access)."
            ) from exc
        raise ConnectionError(f"Downloading {title} to root={root!r} failed: {exc}") from exc

    data = ds.data
    targets = ds.labels if key == "stl10" else ds.targets
    if isinstance(targets, torch.Tensor):
        targets = targets.numpy()
    return as_images(data, np.asarray(targets, dtype=np.int64), class_names=ds.classes, name=title)


# --- images -------------------------------------------------------------------------------------


def _describe(obj: Any) -> str:
    """Short description of an object for error messages."""
    if isinstance(obj, np.ndarray | torch.Tensor):
        return f"{type(obj).__name__} of dtype {obj.dtype} and shape {tuple(obj.shape)}"
    if isinstance(obj, str | numbers.Number):
        text = repr(obj) if isinstance(obj, str) else str(obj)
        return f"{type(obj).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    return type(obj).__name__


def _is_object_array(X: Any) -> bool:
    # np.asarray of differently sized images gives a 1-D object array: treat it as a list.
    return isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1


def _is_dataset(X: Any) -> bool:
    if isinstance(X, torch.utils.data.Dataset):
        return True
    # Duck-typed map-style datasets; strings and mappings also index but are not data sets.
    return (
        hasattr(X, "__getitem__")
        and hasattr(X, "__len__")
        and not isinstance(X, str | bytes | Mapping | pd.DataFrame | pd.Series)
    )


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


def _array_to_nchw(arr: np.ndarray, name: str) -> np.ndarray:
    """Convert an (N, H, W), (N, H, W, C) or (N, C, H, W) array to contiguous uint8 NCHW."""
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        last = _channels_last(arr.shape[1], arr.shape[3])
        if last is None:
            raise ValueError(
                f"{name} has shape {arr.shape}: expected 1, 3 or 4 channels in axis 1 "
                "(n_samples, channels, height, width) or axis 3 "
                "(n_samples, height, width, channels)."
            )
        if last:
            arr = arr.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{name} must have shape {_SHAPE_HINT}, got shape {arr.shape}.")
    # Drop alpha before converting so it never costs a float pass.
    arr = _to_uint8(arr[:, :3], name)
    arr = np.ascontiguousarray(arr)
    # torch.from_numpy warns on read-only arrays (e.g. memory maps).
    return arr if arr.flags.writeable else arr.copy()


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


def _item_to_chw(img: Any, name: str) -> np.ndarray:
    """Convert one PIL image, array or tensor to a uint8 (C, H, W) array with C in 1, 3."""
    if isinstance(img, Image.Image):
        mode = "L" if img.mode in _GRAY_MODES else "RGB"
        arr = np.asarray(img.convert(mode))
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if not isinstance(img, np.ndarray | torch.Tensor):
        raise TypeError(
            f"{name} must be a PIL image, numpy array or torch tensor, got {_describe(img)}."
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
    return _to_uint8(arr[:3], name)


def _stack_items(
    n: int,
    get: Callable[[int], Any],
    name: str,
    size: tuple[int, int] | None,
    *,
    allow_labels: bool,
) -> tuple[torch.Tensor, list | None]:
    """Convert the items of a sequence or dataset to one uint8 NCHW tensor (and labels)."""
    if n < 2:
        raise ValueError(f"{name} must contain at least 2 images, got {n}.")
    arrays, item_labels = [], []
    for i in range(n):
        item = get(i)
        if allow_labels and isinstance(item, tuple | list):
            if len(item) < 2:
                raise ValueError(
                    f"{name}[{i}] must be an image or an (image, label) tuple, "
                    f"got a {type(item).__name__} of length {len(item)}."
                )
            item, label = item[0], item[1]
            item_labels.append(label.item() if isinstance(label, torch.Tensor) else label)
        arrays.append(_item_to_chw(item, f"{name}[{i}]"))
    if item_labels and len(item_labels) != n:
        raise ValueError(f"{name} yields labels for some items but not for others.")

    # Grey images next to colour ones are repeated to RGB, as PIL's convert("RGB") would.
    if len({a.shape[0] for a in arrays}) > 1:
        arrays = [np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    sizes = [a.shape[1:] for a in arrays]
    odd = next((i for i, s in enumerate(sizes) if s != sizes[0]), None)
    if odd is not None:
        if size is None:
            raise ValueError(
                f"{name} has images of different sizes: {name}[0] is {sizes[0]} and "
                f"{name}[{odd}] is {sizes[odd]} (height, width). Pass resize=(height, width) "
                "to resize them all to one size."
            )
        tensors = [_resize(torch.from_numpy(np.ascontiguousarray(a))[None], size) for a in arrays]
        images = torch.cat(tensors)
    else:
        images = torch.from_numpy(np.stack(arrays))
    if not item_labels or all(label is None for label in item_labels):
        return images, None
    return images, item_labels


def _check_resize(resize: Any) -> tuple[int, int] | None:
    if resize is None:
        return None
    size = (resize, resize) if isinstance(resize, numbers.Integral) else resize
    if (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)
        and min(size) >= 1
    ):
        return int(size[0]), int(size[1])
    raise ValueError(
        f"resize must be None, a positive int or a (height, width) pair of positive ints, "
        f"got {resize!r}."
    )


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 NCHW images with antialiased bilinear interpolation."""
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for start in range(0, len(images), _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        chunk = F.interpolate(chunk, size=size, mode="bilinear", antialias=True)
        out[start : start + _RESIZE_CHUNK] = chunk.round_().clamp_(0, 255).to(torch.uint8)
    return out


# --- labels -------------------------------------------------------------------------------------


def _encode_labels(
    labels: Any, n: int, class_names: Sequence[str] | None
) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """Encode labels as int64 codes in [0, n_classes) plus the name of each code.

    The rule of :mod:`tsimcne_widgets.labels`, shared with the scatter plots and the HTML
    export; images carry classes only, so labels that rule calls continuous are refused.
    """
    enc = encode_labels(labels, n, class_names, noun="images")
    if enc.kind == "none":
        return None, None
    if enc.kind == "continuous":
        raise TypeError(
            "labels must be classes (ints, strings, bools, a categorical, or whole-number "
            f"floats with at most {MAX_FLOAT_CLASSES} distinct values), got continuous "
            "floats; pass them to a scatter plot as labels for a colour bar instead."
        )
    return enc.values, enc.names
