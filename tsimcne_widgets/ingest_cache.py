"""The on-disk cache of :mod:`tsimcne_widgets.ingest`: read images kept as ``.npy`` + JSON.

An entry is one folder or file list at one resize. Its stem comes from the folder (or the
file list) and the settings; its key from the file list, sizes and modification times, so
a changed folder is read again. The arrays are written first and the JSON, which makes the
entry valid, last, each file atomically; a load checks shapes and checksums and warns and
returns None for a damaged entry. The images load memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
import zlib
from collections.abc import Sequence

import numpy as np
import PIL
import torch

from ._atomic import atomic_write

__all__ = ["FORMAT", "entry", "load", "write"]

log = logging.getLogger(__name__)

# Bump when decoding or resizing changes, so that older entries are read again.
FORMAT = 1


def _stat_line(path: str, shown: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{shown}\0-\0-\n"
    return f"{shown}\0{st.st_size}\0{st.st_mtime_ns}\n"


def entry(cache: str, kind: str, root: str | None, files: Sequence[str],
          size: tuple[int, int] | None) -> tuple[str, str]:
    """The entry's path stem in `cache` (one per folder or file list, and resize) and its
    content key (the file list, sizes and modification times, and how they are decoded)."""
    params = json.dumps({
        "format": FORMAT, "kind": kind, "resize": size, "channels": "auto",
        "pillow": PIL.__version__,
    })
    ident = hashlib.sha256(f"{params}\0{root}\0".encode())
    key = hashlib.sha256(f"{params}\0".encode())
    for f in files:
        shown = f if root is None else os.path.relpath(f, root)
        if root is None:
            ident.update(f"{f}\n".encode())
        key.update(_stat_line(f, shown).encode())
    return os.path.join(cache, f"images-{ident.hexdigest()[:20]}"), key.hexdigest()


def _crc32(arr: np.ndarray) -> int:
    flat = arr.reshape(-1)
    crc, step = 0, 1 << 24
    for start in range(0, flat.size, step):
        crc = zlib.crc32(flat[start : start + step], crc)
    return crc


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def write(stem: str, key: str, res) -> None:
    """Store `res` (an :class:`~tsimcne_widgets.ingest.Ingested`): the arrays first, the
    JSON (which makes the entry valid) last."""
    images = res.images.numpy()
    meta = {
        "format": FORMAT,
        "key": key,
        "shape": list(images.shape),
        "crc32": _crc32(images),
        "n_items": res.n_items,
        "kept": res.kept.tolist(),
        "labels": res.labels is not None,
        "class_names": None if res.class_names is None else list(res.class_names),
        "files": list(res.files or ()),
        "skipped": list(res.skipped),
        "reasons": list(res.reasons),
    }
    _remove(stem + ".json")  # invalid while the arrays change
    atomic_write(stem + ".npy", lambda f: np.lib.format.write_array(f, images,
                                                                     allow_pickle=False))
    if res.labels is not None:
        labels = np.asarray(res.labels, dtype=np.int64)
        meta["labels_crc32"] = _crc32(labels)
        atomic_write(stem + ".labels.npy",
                      lambda f: np.lib.format.write_array(f, labels, allow_pickle=False))
    else:
        _remove(stem + ".labels.npy")
    atomic_write(stem + ".json", lambda f: f.write(json.dumps(meta).encode()))


class _Damaged(Exception):
    pass


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise _Damaged(what)


def load(stem: str, key: str, n_items: int) -> dict | None:
    """The entry's ``Ingested`` fields if it is complete, intact and made for `key`; None
    (and a warning if it is damaged) otherwise."""
    try:
        with open(stem + ".json", "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        meta = json.loads(text)
        _check(isinstance(meta, dict), "the metadata is not a JSON object")
        if meta.get("format") != FORMAT or meta.get("key") != key:
            log.info("cache entry %s is for other files or settings; reading again", stem)
            return None
        images = np.load(stem + ".npy", mmap_mode="c", allow_pickle=False)
        shape = tuple(meta["shape"])
        _check(images.dtype == np.uint8 and images.shape == shape and images.ndim == 4
               and images.shape[1] in (1, 3),
               f"an array of {images.dtype} and shape {images.shape}, expected {shape}")
        _check(_crc32(images) == meta["crc32"], "checksum mismatch")
        n = shape[0]
        kept = np.asarray(meta["kept"], dtype=np.int64)
        _check(meta["n_items"] == n_items and kept.shape == (n,) and (n == 0 or (
            kept[0] >= 0 and kept[-1] < n_items and bool(np.all(np.diff(kept) > 0)))),
            "kept indices")
        class_names = meta["class_names"]
        labels = None
        if meta["labels"]:
            labels = np.load(stem + ".labels.npy", allow_pickle=False)
            _check(labels.dtype == np.int64 and labels.shape == (n,), "labels shape")
            _check(_crc32(labels) == meta["labels_crc32"], "labels checksum mismatch")
            if class_names is not None:
                _check(all(isinstance(c, str) for c in class_names), "class names")
                _check(labels.size == 0 or (labels.min() >= 0
                                            and labels.max() < len(class_names)), "labels")
        reasons = meta["reasons"]
        _check(isinstance(reasons, list) and len(reasons) == n_items - n
               and all(isinstance(r, str) for r in reasons), "reasons")
    except (_Damaged, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        warnings.warn(
            f"The image cache entry {stem}.* is damaged ({exc}); reading the images again.",
            RuntimeWarning,
            stacklevel=5,
        )
        return None
    return {
        "images": torch.from_numpy(images),  # copy-on-write map: writable, never written back
        "labels": labels,
        "class_names": None if class_names is None else tuple(class_names),
        "n_items": n_items,
        "kept": kept,
        "reasons": tuple(reasons),
    }
