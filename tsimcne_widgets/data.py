"""Turn user image data into one canonical form: a uint8 ``(N, C, H, W)`` tensor plus labels.

Everything downstream (augmentations, training, plotting) only ever sees an :class:`ImageData`,
so all input checking and conversion lives here.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .ingest import Ingested, check_options, read_folder, read_items, skip_warning
from .labels import MAX_FLOAT_CLASSES, Labels, encode_labels
from .pixels import _channels_last, _describe, _to_numpy, _to_uint8, check_size, resize_images

__all__ = ["ImageData", "as_images", "check_batch_size", "load_digits", "load_torchvision"]

_SHAPE_HINT = (
    "(n_samples, height, width), (n_samples, height, width, channels) "
    "or (n_samples, channels, height, width)"
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
    skipped : tuple of str, default=()
        Items of the input that could not be read and are left out of `images`: file paths,
        or ``"index i"`` for items without a path (see :func:`as_images`).
    files : tuple of str or None, default=None
        The file each image was read from, for a folder, a list of file paths or a data
        set with ``samples`` (e.g. ``ImageFolder``); None for other inputs.
    """

    images: torch.Tensor
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    skipped: tuple[str, ...] = ()
    files: tuple[str, ...] | None = None

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
        if not isinstance(self.skipped, tuple) or not all(
            isinstance(s, str) for s in self.skipped
        ):
            raise TypeError(f"skipped must be a tuple of str, got {_describe(self.skipped)}.")
        if self.files is not None:
            if not isinstance(self.files, tuple) or not all(
                isinstance(f, str) for f in self.files
            ):
                raise TypeError(f"files must be a tuple of str, got {_describe(self.files)}.")
            if len(self.files) != len(images):
                raise ValueError(
                    f"files must name one file per image ({len(images)}), got {len(self.files)}."
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
            f"image_shape={self.image_shape}, n_classes={n_classes}"
            + (f", skipped={len(self.skipped)})" if self.skipped else ")")
        )


def as_images(
    X: Any,
    labels: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    resize: int | tuple[int, int] | None = None,
    name: str = "X",
    num_workers: int | None = None,
    progress: bool | str = "auto",
    cache: str | os.PathLike | None = None,
    strict: bool = False,
) -> ImageData:
    """Validate images in any supported form and convert them to :class:`ImageData`.

    Parameters
    ----------
    X : ImageData, array-like, folder, sequence of images or file paths, or torch Dataset
        Accepted forms:

        - :class:`ImageData`: returned as is, unless `labels`, `class_names` or `resize`
          are given, which then override.
        - numpy array or torch tensor of shape ``(N, H, W)`` (grey), ``(N, H, W, C)`` or
          ``(N, C, H, W)`` with ``C`` in 1, 3 or 4 (the alpha channel is dropped). The
          channel axis is axis 1 if only it holds 1, 3 or 4 entries, axis 3 if only it does.
          If both do (images at most 4 pixels wide), axis 1 is chosen, unless axis 1 has 4
          entries and axis 3 has 1 or 3.
        - a folder (str or :class:`os.PathLike`). If it has sub-folders holding images,
          like torchvision's ``ImageFolder``, each such sub-folder is a class: the labels are
          the sub-folder names, the class names are sorted, and the image files are found
          recursively (image files directly in the folder are then ignored, with a warning).
          Otherwise the image files directly in the folder are read, without labels. Image
          files end in one of :data:`tsimcne_widgets.ingest.IMAGE_EXTENSIONS` (any case);
          other files and hidden files and folders (names starting with ".") are ignored.
          Files are read in ``ImageFolder``'s order.
        - list or tuple of file paths (str or :class:`os.PathLike`), PIL images, numpy arrays
          or tensors; each array is ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` with the same
          rule. PIL images (and files) in mode ``"1"``, ``"L"`` or ``"LA"`` give one channel,
          all others are converted to RGB. If some images are grey and some colour, the grey
          ones are repeated to RGB.
        - any map-style dataset (``__getitem__`` and ``__len__``, e.g. torchvision data sets
          or ``ImageFolder``) whose items are an image or an ``(image, label, ...)`` tuple.
          Its labels are used when `labels` is None, and its ``classes`` as class names.

        Values must be uint8, bool (True becomes 255), integers in [0, 255] or floats in
        [0, 1], which are scaled by 255 and rounded to the nearest integer.

        Folders, lists and data sets are read item by item: each image is decoded, resized
        and written into one preallocated array as it is read, so memory stays near the size
        of the result (without `resize`, that is the full-size images).
    labels : array-like of shape (N,), optional
        Class labels: ints, strings, bools, whole-number floats, or a pandas
        Categorical/Series, by the rule of :mod:`tsimcne_widgets.labels` that the plots
        share (other floats are continuous and refused here). They are stored as codes
        ``0 .. n_classes - 1``. Integer labels with `class_names` are used as the codes
        themselves; string labels with `class_names` are looked up in it; a categorical
        keeps its categories. Otherwise the codes index the sorted unique labels, whose
        string forms become the class names (labels 3, 5, 7 give codes 0, 1, 2 named
        "3", "5", "7"). One per input item: the labels of skipped items are dropped with
        them.
    class_names : sequence of str, optional
        Name of each class code; see `labels`.
    resize : int or (int, int), optional
        Resize every image to ``(height, width)`` (an int gives a square) with antialiased
        bilinear interpolation. Required when a folder, sequence or dataset has images of
        different sizes. JPEG files are then decoded at 1/2, 1/4 or 1/8 scale by libjpeg
        when that still leaves at least twice the target size, which is much faster.
    name : str, default="X"
        Name of the argument in error messages.
    num_workers : int or None, default=None
        Workers that read a folder, list or dataset in parallel: forked processes on Linux
        (the items need not be picklable), threads elsewhere. Each decodes and resizes its
        items and hands back small uint8 arrays; the images keep the input order. 0 reads
        in this process. None uses one per core this process may run on
        (``os.sched_getaffinity``) for a folder, a list of file paths or a dataset of at
        least 256 items, and reads in this process otherwise (a list of images already in
        memory, or few items). If the workers fail (e.g. one is killed), the rest is read
        in this process, with a :class:`RuntimeWarning`; dataset items that fail in a
        worker are tried again in this process before they count as unreadable. Ignored
        for arrays and tensors.
    progress : bool or 'auto', default='auto'
        Show a tqdm progress bar (a widget in Jupyter) while reading a folder, list or
        dataset. 'auto' shows one for more than 1000 items (and never when loading from
        `cache`).
    cache : str or os.PathLike, optional
        Folder (created if missing) in which to keep the images read from a folder or a
        list of file paths, so that reading them again is instant: a uint8 ``.npy`` array,
        loaded memory-mapped (copy-on-write, so the tensor is writable and nothing is
        written back), the labels (``.npy``) and a JSON file with the class names, the file
        list and a checksum; nothing is pickled. An entry is keyed by the list of files and
        their sizes and modification times, `resize` and the Pillow version: adding,
        removing or changing a file reads the folder again and replaces the entry. Entries
        are written atomically, the JSON last; a damaged entry is detected (checksum), read
        again with a :class:`RuntimeWarning` and replaced. A failure to write the cache only
        warns. Other inputs raise a ValueError when `cache` is given.
    strict : bool, default=False
        By default, items that cannot be read (corrupt, truncated or missing files, or a
        dataset item that raises) are skipped with one :class:`UserWarning` naming the
        first 10 and counting the others, and listed in :attr:`ImageData.skipped`. True
        raises a ValueError naming the first such item instead.

    Returns
    -------
    ImageData
        The images as a contiguous uint8 ``(N, C, H, W)`` CPU tensor (it may share memory
        with `X`, or map the cache file), with the encoded labels and the skipped items.

    Raises
    ------
    TypeError
        If `X`, its dtype or `labels` are of an unsupported type, or `labels` are
        continuous, or `num_workers`, `progress`, `cache` or `strict` are of the wrong type.
    ValueError
        If shapes, values, sizes or label lengths are invalid; if fewer than 2 images can be
        read; with `strict`, if an item cannot be read; if `cache` is given for an input
        that is not a folder or a list of file paths.
    FileNotFoundError
        If `X` is a str or path that is not an existing folder.
    """
    size = check_size(resize, "resize")
    num_workers, progress, cache, strict = check_options(num_workers, progress, cache, strict)
    reading = {"name": name, "size": size, "num_workers": num_workers, "progress": progress,
               "strict": strict, "cache": cache}
    read: Ingested | None = None
    skipped: tuple[str, ...] = ()
    files: tuple[str, ...] | None = None
    if isinstance(X, ImageData):
        _no_cache(cache, X)
        if labels is None and class_names is None and size in (None, X.image_shape):
            return X
        images, skipped, files = X.images, X.skipped, X.files
        if labels is None and class_names is None:
            labels, class_names = X.labels, X.class_names
        elif labels is None:
            labels = X.labels
    elif isinstance(X, str | os.PathLike):
        read, n_ignored = read_folder(
            X, on_scan=lambda n_files: _check_label_count(labels, n_files), **reading
        )
        if n_ignored:
            warnings.warn(
                f"{n_ignored} image files directly in {name}={os.fspath(X)!r} are ignored: "
                "it has class sub-folders, and only their images are read.",
                UserWarning,
                stacklevel=2,
            )
    elif isinstance(X, torch.Tensor | np.ndarray) and not _is_object_array(X):
        _no_cache(cache, X)
        images = torch.from_numpy(_array_to_nchw(_to_numpy(X), name))
    elif isinstance(X, list | tuple) or _is_object_array(X):
        _check_label_count(labels, len(X))  # before a long read
        read = read_items(X, allow_labels=False, **reading)
    elif _is_dataset(X):
        _check_label_count(labels, len(X))
        read = read_items(X, allow_labels=True, **reading)
    else:
        raise TypeError(
            f"{name} must be a numpy array, torch tensor, folder, list of file paths, PIL "
            f"images or arrays, torch Dataset or ImageData, got {_describe(X)}."
        )

    if read is not None:
        images, skipped, files = read.images, read.skipped, read.files
        if files is None:
            files = _dataset_files(X, read.kept)
        if skipped:
            warnings.warn(skip_warning(name, skipped, read.reasons, read.n_items), UserWarning,
                          stacklevel=2)
        if labels is not None:
            if skipped:
                labels = _take_labels(labels, read.kept, read.n_items)
        elif read.labels is not None:
            labels = read.labels
            if class_names is None:
                if read.class_names is not None:
                    class_names = read.class_names
                elif getattr(X, "classes", None) is not None:
                    class_names = [str(c) for c in X.classes]

    n = int(images.shape[0])
    if n < 2:
        raise ValueError(f"{name} must contain at least 2 images, got {n}.")
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} has empty images of size {tuple(images.shape[2:])}.")
    if size is not None and tuple(images.shape[2:]) != size:
        images = resize_images(images, size)
    codes, names = _encode_labels(labels, n, class_names)
    return ImageData(images.contiguous(), codes, names, skipped, files)


def _dataset_files(X: Any, kept: np.ndarray) -> tuple[str, ...] | None:
    """The file of each read item of a data set that lists ``samples`` as (path, label)
    pairs, as torchvision's ``ImageFolder`` does; else None."""
    samples = getattr(X, "samples", None)
    try:
        if samples is not None and len(samples) == len(X):
            return tuple(os.fspath(samples[int(i)][0]) for i in kept)
    except (TypeError, IndexError, KeyError):
        pass
    return None


def _no_cache(cache: str | None, X: Any) -> None:
    if cache is not None:
        raise ValueError(
            "cache= needs a folder or a list of file paths (whose modification times key "
            f"the cache), got {_describe(X)}; pass cache=None."
        )


def _check_label_count(labels: Any, n_items: int) -> None:
    """One label per input item (checked again, fully, by :func:`_encode_labels`)."""
    if labels is None or (isinstance(labels, Labels) and labels.kind == "none"):
        return
    n_labels = len(labels) if hasattr(labels, "__len__") else None
    if n_labels != n_items:
        shape = np.shape(labels) if n_labels is None else (n_labels,)
        raise ValueError(
            f"labels must have shape ({n_items},) to match the {n_items} images, got "
            f"shape {shape}."
        )


def _take_labels(labels: Any, kept: np.ndarray, n_items: int) -> Any:
    """The labels of the read items, given one label per input item."""
    _check_label_count(labels, n_items)
    if isinstance(labels, Labels):
        return labels if labels.values is None else dataclasses.replace(
            labels, values=labels.values[kept])
    if isinstance(labels, pd.Series):
        return labels.iloc[kept]
    if isinstance(labels, pd.Categorical | np.ndarray):
        return labels[kept]
    if isinstance(labels, torch.Tensor):
        return labels[torch.from_numpy(kept)]
    labels = list(labels)
    return [labels[i] for i in kept]


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
