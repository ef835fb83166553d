"""Read many images (a folder, a list of files, a list of images, a data set) into one array.

:func:`~tsimcne_widgets.data.as_images` is the front door; this module does the reading:

- every item is decoded, converted and resized as soon as it is read, and written into one
  preallocated uint8 ``(N, C, H, W)`` output, so memory stays at the size of the result plus
  the items in flight (a few chunks of already resized images);
- with several workers, forked processes (threads where fork is missing) read chunks of
  items and return small uint8 arrays; the main process writes them in input order; if a
  worker dies (a decoder crashed it), the chunks it may have held are read again one
  process each, and an item whose own process dies is skipped: the main process never
  decodes them, so a crash cannot take the kernel down; if the pool cannot run at all, the
  rest is read in the main process;
- unreadable items (corrupt, truncated, missing, not images) are skipped and named;
- folders and lists of files can be cached on disk as ``.npy`` + JSON, keyed by the file
  list, sizes and modification times, and loaded memory-mapped
  (:mod:`tsimcne_widgets.ingest_cache`).

One item becomes pixels in :mod:`tsimcne_widgets.pixels`.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import numbers
import os
import pickle
import sys
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import ingest_cache
from .pixels import (
    _decode_file,
    _describe,
    _is_path,
    _item_to_chw,
)

log = logging.getLogger(__name__)

#: File name endings (case-insensitive) read from a folder; other files are ignored.
IMAGE_EXTENSIONS = (
    ".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp",
)
# progress="auto" shows a bar when more items than this are read (not loaded from a cache).
PROGRESS_MIN_ITEMS = 1000
# num_workers=None reads in this process below this many items (starting workers costs more).
AUTO_WORKERS_MIN_ITEMS = 256
# Items per task sent to a worker: with resize (small results) and without (full size).
_CHUNK_RESIZED = 64
_CHUNK_FULL = 8
# Tasks in flight per worker: bounds the memory of results waiting to be written.
_IN_FLIGHT_PER_WORKER = 3
# Skipped items named in the warning; the rest are counted.
MAX_NAMED_SKIPS = 10


# --- sources ------------------------------------------------------------------------------------


class _Unreadable:
    """An item that could not be read, why (the exception, made picklable), and its path if
    it was one."""

    __slots__ = ("exc", "path")

    def __init__(self, exc: BaseException, path: str | None = None) -> None:
        self.exc, self.path = exc, path


class _Fatal:
    """An error from a worker that must stop the ingest (a bad item, not an unreadable one)."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return OSError(f"{type(exc).__name__}: {exc}")
    return exc


@dataclass
class _Source:
    """Items read by index: file paths, images, or (image, label) data set items."""

    items: Any
    name: str
    size: tuple[int, int] | None
    allow_labels: bool = False
    # Path of each item where known (files, or a data set's ``samples``): names skipped items.
    paths: Sequence[str] | None = None
    # The items are the file paths themselves: messages name the files.
    files: bool = False

    def __len__(self) -> int:
        return len(self.items)

    def label(self, i: int) -> str:
        """The item in error messages."""
        return repr(str(self.paths[i])) if self.files else f"{self.name}[{i}]"

    def skip_name(self, i: int) -> str:
        """The item in :attr:`ImageData.skipped`: its path, else ``"index i"``."""
        if self.paths is not None:
            return str(self.paths[i])
        return f"index {i}"

    def read(self, i: int) -> tuple[np.ndarray, Any, bool] | _Unreadable:
        """Item `i` as a uint8 (C, H, W) array resized to ``size``, its label and whether it
        had one; or :class:`_Unreadable`. Errors about a readable but invalid item raise."""
        try:
            item = self.items[i]
        except Exception as exc:
            return _Unreadable(exc)
        label, has_label = None, False
        if self.allow_labels and isinstance(item, tuple | list):
            if len(item) < 2:
                raise ValueError(
                    f"{self.name}[{i}] must be an image or an (image, label) tuple, "
                    f"got a {type(item).__name__} of length {len(item)}."
                )
            item, label, has_label = item[0], item[1], True
            if isinstance(label, torch.Tensor):
                label = label.item()
        arr = None
        try:
            if _is_path(item):
                arr = _decode_file(item, self.size)
            elif isinstance(item, Image.Image):
                item.load()
        except Exception as exc:
            return _Unreadable(exc, os.fspath(item) if _is_path(item) else None)
        if arr is None:
            arr = _item_to_chw(item, self.label(i), self.size)
        return arr, label, has_label

    def read_chunk(self, start: int, stop: int) -> list:
        return [self.read(i) for i in range(start, stop)]


# The source of a worker process: set by the pool's initializer (inherited when forked).
_WORKER_SOURCE: _Source | None = None


def _init_worker(source: _Source) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source
    # Workers run side by side: one intra-op thread each, as torch's DataLoader does.
    torch.set_num_threads(1)


def _worker_chunk(start: int, stop: int, source: _Source | None = None) -> list | _Fatal:
    """Read items ``start:stop`` in a worker; errors come back as values, never raised."""
    src = _WORKER_SOURCE if source is None else source
    try:
        results = src.read_chunk(start, stop)
    except Exception as exc:
        return _Fatal(_picklable(exc))
    return [_Unreadable(_picklable(r.exc), r.path) if isinstance(r, _Unreadable) else r
            for r in results]


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Ingested:
    """What :func:`read_folder` and :func:`read_items` read.

    Attributes
    ----------
    images : torch.Tensor
        Contiguous uint8 ``(n_read, C, H, W)``.
    labels : list, numpy.ndarray or None
        Label of each read item (data set items or class folders), else None.
    class_names : tuple of str or None
        Names of the folder classes (None for other inputs).
    n_items : int
        Number of input items.
    kept : numpy.ndarray
        int64 input index of each read image.
    skipped : tuple of str
        Path (or ``"index i"``) of each unreadable item.
    reasons : tuple of str
        Why each skipped item could not be read.
    files : tuple of str or None
        Path of each read image (folders and lists of files).
    from_cache : bool
        Whether the images were loaded from the cache.
    """

    images: torch.Tensor
    labels: Any
    class_names: tuple[str, ...] | None
    n_items: int
    kept: np.ndarray
    skipped: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    files: tuple[str, ...] | None = None
    from_cache: bool = False


class _Writer:
    """Writes read items, in input order, into one preallocated uint8 (N, C, H, W) array."""

    def __init__(self, source: _Source, strict: bool) -> None:
        self.source, self.strict = source, strict
        self.out: np.ndarray | None = None
        self.first = -1
        self.kept: list[int] = []
        self.labels: list = []
        self.n_labelled = 0
        self.skipped: list[str] = []
        self.reasons: list[str] = []

    def add(self, i: int, result: Any) -> None:
        src = self.source
        if isinstance(result, _Unreadable):
            exc = result.exc
            reason = f"{type(exc).__name__}: {exc}"
            what = src.skip_name(i) if result.path is None else str(result.path)
            if self.strict:
                raise ValueError(f"{src.name}: could not read {what} ({reason}).") from exc
            self.skipped.append(what)
            self.reasons.append(reason)
            return
        arr, label, has_label = result
        out = self.out
        if out is None:
            # The first readable item fixes the channels (until a colour one comes) and,
            # without resize, the size.
            size = src.size or arr.shape[1:]
            out = self.out = np.empty((len(src), arr.shape[0], *size), dtype=np.uint8)
            self.first = i
        elif arr.shape[1:] != out.shape[2:]:
            raise ValueError(
                f"{src.name} has images of different sizes: {src.label(self.first)} is "
                f"{tuple(out.shape[2:])} and {src.label(i)} is {tuple(arr.shape[1:])} "
                "(height, width). Pass resize=(height, width) to resize them all to one size."
            )
        if arr.shape[0] > out.shape[1]:
            # Grey images next to colour ones are repeated to RGB, as PIL's convert("RGB")
            # would: widen what was written so far.
            wide = np.empty((out.shape[0], arr.shape[0], *out.shape[2:]), dtype=np.uint8)
            w = len(self.kept)
            wide[:w] = out[:w]
            out = self.out = wide
        out[len(self.kept)] = arr
        self.kept.append(i)
        self.labels.append(label)
        self.n_labelled += has_label

    def result(self) -> Ingested:
        src, n, w = self.source, len(self.source), len(self.kept)
        if w < 2:
            shown = "; ".join(
                f"{s} ({r})" for s, r in zip(self.skipped[:3], self.reasons[:3], strict=True)
            )
            what = "none" if w == 0 else f"only {w}"
            raise ValueError(
                f"{src.name}: {what} of its {n} images could be read; at least 2 are needed. "
                f"Unreadable: {shown}{' ...' if len(self.skipped) > 3 else ''}"
            )
        if 0 < self.n_labelled < w:
            raise ValueError(f"{src.name} yields labels for some items but not for others.")
        out = self.out[:w]
        if w < n // 2:
            out = out.copy()  # free the rows of the many skipped items
        labels = None
        if self.n_labelled and not all(label is None for label in self.labels):
            labels = self.labels
        return Ingested(
            images=torch.from_numpy(out),
            labels=labels,
            class_names=None,
            n_items=n,
            kept=np.asarray(self.kept, dtype=np.int64),
            skipped=tuple(self.skipped),
            reasons=tuple(self.reasons),
        )


def default_num_workers() -> int:
    """Number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _make_pool(source: _Source, workers: int, kind: str | None = None) -> tuple[Executor, bool]:
    """A pool of `workers`: forked processes on Linux (the source is inherited, never pickled),
    threads elsewhere (Pillow decodes without the GIL; spawned processes would re-import torch
    and need a ``__main__`` guard in scripts). Returns the pool and whether its tasks must be
    given the source (threads)."""
    kind = kind or ("fork" if _can_fork() else "thread")
    if kind == "thread":
        return ThreadPoolExecutor(workers, thread_name_prefix="tsimcne-ingest"), True
    ctx = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(source,))
    return pool, False


def _can_fork() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _progress_bar(show: bool, total: int, name: str):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc=f"Reading {name}", dynamic_ncols=True)


class _PoolFailed(Exception):
    """The worker pool itself failed (it could not start, a result could not be pickled...)."""


class _WorkerDied(Exception):
    """A worker process died (a decoder crashed it) while ``spans`` were in flight."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        super().__init__(f"a worker died with {len(spans)} chunk(s) in flight")
        self.spans = spans


def _in_fresh_worker(source: _Source, start: int, stop: int) -> list:
    """Items ``start:stop`` read by a new one-process pool; raises BrokenProcessPool if the
    process dies."""
    pool, _ = _make_pool(source, 1, "fork")
    with pool:
        results = pool.submit(_worker_chunk, start, stop).result()
    # An error raised (not a crash): read here again for its traceback.
    return source.read_chunk(start, stop) if isinstance(results, _Fatal) else results


def _read_isolated(source: _Source, start: int, stop: int) -> list:
    """Items ``start:stop`` after a worker died on one of them: the chunk in a process of its
    own and, if that dies too, each item in its own; an item whose process dies is
    unreadable. The ingest's own process never decodes them, so a crash cannot take it (and
    the Jupyter kernel) down."""
    try:
        return _in_fresh_worker(source, start, stop)
    except BrokenProcessPool:
        pass
    out = []
    for i in range(start, stop):
        try:
            out += _in_fresh_worker(source, i, i + 1)
        except BrokenProcessPool:
            path = str(source.paths[i]) if source.paths is not None else None
            out.append(_Unreadable(OSError("its decoder crashed the worker process"), path))
    return out


def _read(source: _Source, *, workers: int, show: bool, strict: bool,
          pool_kind: str | None = None) -> Ingested:
    """Read every item of `source` into one array (see the module docstring)."""
    n = len(source)
    writer = _Writer(source, strict)
    per_chunk = _CHUNK_RESIZED if source.size is not None else _CHUNK_FULL
    if workers:
        per_chunk = max(1, min(per_chunk, math.ceil(n / (workers * _IN_FLIGHT_PER_WORKER))))
    chunks = deque((s, min(s + per_chunk, n)) for s in range(0, n, per_chunk))
    workers = min(workers, len(chunks))
    bar: list = [None]  # the progress bar, made after any fork
    try:
        while workers and chunks:
            try:
                _read_in_pool(source, writer, chunks, workers, show, bar, pool_kind)
            except _WorkerDied as died:
                # Read the chunks that were in flight one process each, then go on.
                for start, stop in died.spans:
                    for i, result in enumerate(_read_isolated(source, start, stop), start):
                        writer.add(i, result)
                    chunks.popleft()
                    if bar[0] is not None:
                        bar[0].update(stop - start)
                continue
            except _PoolFailed as failed:
                # Read the chunk that failed and the rest here.
                exc = failed.__cause__
                warnings.warn(
                    f"Reading {source.name} with {workers} workers failed "
                    f"({type(exc).__name__}: {exc}); reading the rest in this process.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            break
        if bar[0] is None:
            bar[0] = _progress_bar(show, n, source.name)
        while chunks:
            start, stop = chunks.popleft()
            for i in range(start, stop):
                writer.add(i, source.read(i))
            if bar[0] is not None:
                bar[0].update(stop - start)
    finally:
        if bar[0] is not None:
            bar[0].close()
    return writer.result()


def _read_in_pool(source: _Source, writer: _Writer, chunks: deque, workers: int, show: bool,
                  bar: list, pool_kind: str | None) -> None:
    """Read `chunks` with a pool of workers, writing (and popping) them in order; raises
    :class:`_PoolFailed` if the pool fails. Sets ``bar[0]`` to the progress bar."""
    pending: deque[tuple[tuple[int, int], Future]] = deque()
    it = iter(list(chunks))
    pool = None
    try:
        try:
            pool, give_source = _make_pool(source, workers, pool_kind)
            extra = (source,) if give_source else ()

            def submit() -> None:
                span = next(it, None)
                if span is not None:
                    pending.append((span, pool.submit(_worker_chunk, *span, *extra)))

            with warnings.catch_warnings():
                # Python >= 3.12 warns about fork() in a process with threads (torch's).
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                for _ in range(workers * _IN_FLIGHT_PER_WORKER):
                    submit()
        except Exception as exc:  # e.g. no fork from a daemonic process
            raise _PoolFailed() from exc
        # After the fork, so that tqdm's monitor thread is not copied into the workers.
        if bar[0] is None:
            bar[0] = _progress_bar(show, len(source), source.name)
            if bar[0] is not None:
                bar[0].update(len(source) - sum(b - a for a, b in chunks))
        while pending:
            span, fut = pending[0]
            try:
                results = fut.result()
                pending.popleft()
                submit()
            except BrokenProcessPool as exc:
                raise _WorkerDied([sp for sp, _ in pending]) from exc
            except Exception as exc:
                raise _PoolFailed() from exc
            if isinstance(results, _Fatal):
                # Read the chunk again here: raises the original error with its traceback,
                # unless the item fails only in a worker (e.g. a CUDA tensor after fork).
                results = source.read_chunk(*span)
            elif not source.files:
                # A data set item may fail in a forked worker only (an open database or
                # file handle): try unreadable items again here before skipping them.
                results = [source.read(i) if isinstance(r, _Unreadable) else r
                           for i, r in enumerate(results, span[0])]
            chunks.popleft()
            for i, result in enumerate(results, span[0]):
                writer.add(i, result)
            if bar[0] is not None:
                bar[0].update(span[1] - span[0])
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# --- options ------------------------------------------------------------------------------------


def check_options(
    num_workers: Any, progress: Any, cache: Any, strict: Any
) -> tuple[int | None, bool | str, str | None, bool]:
    """Validate the reading options of :func:`~tsimcne_widgets.data.as_images`."""
    if num_workers is not None:
        if not isinstance(num_workers, numbers.Integral) or isinstance(num_workers, bool):
            raise TypeError(
                "num_workers must be None (one per core) or an int >= 0 (0 reads in this "
                f"process), got {_describe(num_workers)}."
            )
        if num_workers < 0:
            raise ValueError(
                "num_workers must be None (one per core) or an int >= 0 (0 reads in this "
                f"process), got {num_workers}."
            )
        num_workers = int(num_workers)
    if not isinstance(progress, bool | str):
        raise TypeError(f"progress must be True, False or 'auto', got {_describe(progress)}.")
    if isinstance(progress, str) and progress != "auto":
        raise ValueError(f"progress must be True, False or 'auto', got {progress!r}.")
    if cache is not None:
        if not isinstance(cache, str | os.PathLike):
            raise TypeError(
                f"cache must be None or a folder path (str or os.PathLike), got {_describe(cache)}."
            )
        cache = os.path.abspath(os.path.expanduser(os.fspath(cache)))
        if os.path.exists(cache) and not os.path.isdir(cache):
            raise ValueError(f"cache must be a folder, got the file {cache!r}.")
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {_describe(strict)}.")
    return num_workers, progress, cache, strict


def _workers_for(num_workers: int | None, n: int, decodes: bool = True) -> int:
    """Workers for `n` items: `num_workers`, or for None one per core when the items need
    decoding (files, data sets) and are many; in-memory images need no workers."""
    if num_workers is not None:
        return num_workers
    cores = default_num_workers()
    return cores if decodes and cores > 1 and n >= AUTO_WORKERS_MIN_ITEMS else 0


def _show_for(progress: bool | str, n: int) -> bool:
    return n > PROGRESS_MIN_ITEMS if progress == "auto" else bool(progress)


def skip_warning(name: str, skipped: Sequence[str], reasons: Sequence[str], n: int) -> str:
    """The warning about skipped items: the first :data:`MAX_NAMED_SKIPS` named, then a count."""
    shown = "\n".join(
        f"  {s}: {r}" for s, r in zip(skipped[:MAX_NAMED_SKIPS], reasons, strict=False)
    )
    more = len(skipped) - MAX_NAMED_SKIPS
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return (
        f"Skipped {len(skipped)} of the {n} items of {name} that could not be read "
        f"(listed in ImageData.skipped; strict=True raises instead):\n{shown}{tail}"
    )


# --- folders ------------------------------------------------------------------------------------


def _is_image_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _files_under(folder: str) -> list[str]:
    """Image files under `folder`, in torchvision ``ImageFolder``'s order (hidden ones left
    out)."""
    found = []
    for dirpath, dirnames, fnames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.append((dirpath, sorted(f for f in fnames if _is_image_file(f))))
    return [os.path.join(d, f) for d, fs in sorted(found) for f in fs]


def scan_folder(
    root: str, name: str
) -> tuple[list[str], list[int] | None, tuple[str, ...] | None, int]:
    """Image files of a folder, like torchvision's ``ImageFolder``.

    Returns
    -------
    files : list of str
    labels : list of int or None
        Class code of each file when the folder has class sub-folders.
    class_names : tuple of str or None
        The sorted names of the sub-folders that hold images.
    n_ignored : int
        Image files directly in `root` that were ignored because it has class sub-folders.
    """
    if not os.path.isdir(root):
        is_file = os.path.exists(root)
        error = NotADirectoryError if is_file else FileNotFoundError
        raise error(
            f"{name}={root!r} is {'a file, not a folder' if is_file else 'not an existing folder'};"
            " pass a folder of images (or of class sub-folders), a list of file paths, images "
            "or a data set."
        )
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    loose = [e.path for e in entries if _is_image_file(e.name) and e.is_file()]
    files: list[str] = []
    labels: list[int] = []
    names: list[str] = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        inside = _files_under(entry.path)
        if inside:
            labels += [len(names)] * len(inside)
            names.append(entry.name)
            files += inside
    if names:
        return files, labels, tuple(names), len(loose)
    if not loose:
        raise ValueError(
            f"{name}={root!r} holds no image files (looked for {', '.join(IMAGE_EXTENSIONS)} "
            "in it and in its sub-folders)."
        )
    return loose, None, None, 0


def _read_files(files: list[str], labels: list[int] | None, class_names: tuple[str, ...] | None,
                *, name: str, size: tuple[int, int] | None, num_workers: int | None,
                progress: bool | str, strict: bool, cache: str | None, kind: str,
                root: str | None, key_files: list[str] | None = None) -> Ingested:
    """Read image files, through the cache when one is given (keyed by `key_files`)."""
    stem = key = None
    res = None
    if cache is not None:
        os.makedirs(cache, exist_ok=True)
        stem, key = ingest_cache.entry(cache, kind, root, key_files or files, size)
        fields = ingest_cache.load(stem, key, len(files))
        res = None if fields is None else Ingested(**fields, from_cache=True)
        if res is not None and strict and len(res.kept) < res.n_items:
            res = None  # strict=True raises about the unreadable files: read them again
        if res is not None:
            log.info("loaded %d images from the cache %s", len(res.images), stem)
    if res is None:
        n = len(files)
        source = _Source(files, name, size, paths=files, files=True)
        res = _read(source, workers=_workers_for(num_workers, n),
                    show=_show_for(progress, n), strict=strict)
        if labels is not None:
            res.labels = np.asarray(labels, dtype=np.int64)[res.kept]
            res.class_names = class_names
        if stem is not None:
            res.files = tuple(files[i] for i in res.kept)
            try:
                ingest_cache.write(stem, key, res)
            except OSError as exc:
                warnings.warn(f"Could not write the image cache {stem}.*: {exc}",
                              RuntimeWarning, stacklevel=4)
    # Names as given in this call (a cache entry may have been written from another folder).
    res.files = tuple(files[i] for i in res.kept)
    if res.from_cache:
        kept = set(res.kept.tolist())
        res.skipped = tuple(f for i, f in enumerate(files) if i not in kept)
    return res


def read_folder(root: str | os.PathLike, *, name: str, size: tuple[int, int] | None,
                num_workers: int | None, progress: bool | str, strict: bool,
                cache: str | None,
                on_scan: Callable[[int], None] | None = None) -> tuple[Ingested, int]:
    """Read a folder of images or of class sub-folders (see ``as_images``); also returns the
    number of image files ignored directly in a folder that has class sub-folders.
    `on_scan` is called with the number of files found, before they are read."""
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    files, labels, class_names, n_ignored = scan_folder(root, name)
    if len(files) < 2:
        raise ValueError(f"{name} must contain at least 2 images, got {len(files)}.")
    if on_scan is not None:
        on_scan(len(files))
    res = _read_files(files, labels, class_names, name=name, size=size,
                      num_workers=num_workers, progress=progress, strict=strict, cache=cache,
                      kind="folder", root=root)
    return res, n_ignored


def read_items(items: Any, *, name: str, size: tuple[int, int] | None, allow_labels: bool,
               num_workers: int | None, progress: bool | str, strict: bool,
               cache: str | None) -> Ingested:
    """Read a list of file paths or images, or a map-style data set (see ``as_images``)."""
    n = len(items)
    if n < 2:
        raise ValueError(f"{name} must contain at least 2 images, got {n}.")
    if not allow_labels and all(_is_path(x) for x in items):
        files = [os.fspath(x) for x in items]
        # Keyed by absolute paths, so that the same names relative to another folder differ.
        key_files = [os.path.abspath(f) for f in files] if cache is not None else None
        return _read_files(files, None, None, name=name, size=size, num_workers=num_workers,
                           progress=progress, strict=strict, cache=cache, kind="paths",
                           root=None, key_files=key_files)
    if cache is not None:
        raise ValueError(
            f"cache= needs a folder or a list of file paths (whose modification times key the "
            f"cache), got {_describe(items)} of other items; pass cache=None."
        )
    paths = None
    samples = getattr(items, "samples", None)  # torchvision DatasetFolder / ImageFolder
    if allow_labels and isinstance(samples, list) and len(samples) == n:
        try:
            paths = [str(s[0]) for s in samples]
        except (TypeError, IndexError, KeyError):
            paths = None
    source = _Source(items, name, size, allow_labels=allow_labels, paths=paths)
    # A list holds images already in memory (or a few paths among them): no workers by default.
    workers = _workers_for(num_workers, n, decodes=allow_labels)
    return _read(source, workers=workers, show=_show_for(progress, n), strict=strict)
