"""Run directories: a training run's snapshots on disk, to watch it from another process.

``TSimCNE.start(X, snapshot_dir=path)`` writes a run directory as it trains (under
torchrun, Slurm or a plain script), and :meth:`Explorer.watch` /
:class:`~tsimcne_widgets.watch.WatchedRun` follow it from a notebook.
:func:`read_snapshots` reads one back. The layout (format version 1)::

    path/
        meta.json            the run's set-up, written when a run starts
        index.jsonl          append-only log: one JSON record per line
        snapshot-000000.npy  one per snapshot: float32 positions of shape (n, 2)
        indices.npy          int64 (n,): which images the snapshots show, with a subsample
        control.json         a command for the training process, written by a watcher

**meta.json**: ``format`` (1), ``session`` (a random id), ``n_samples`` (training images),
``n_points`` (points per snapshot), ``schedule`` (a list of stages: ``name``,
``epochs``, ...), ``steps_per_epoch``, ``total_steps``, ``batch_size``,
``precision``, ``image_shape``, ``n_channels``, ``control`` (whether the run reads
``control.json``) and ``time``. Labels are never stored.

**index.jsonl** records, each an object with a ``type``:

- ``start``: ``session``, ``resumed``, ``step`` (steps done when it started), ``time``,
  ``pid``, ``host``. The first line of an index; a resumed run appends another.
- ``snapshot``: ``file``, ``stage``, ``epoch``, ``step``, ``loss``, ``kind``, ``time``,
  ``indices`` (None, or the ``.npy`` file of int64 point indices), as in
  :class:`~tsimcne_widgets.snapshots.Snapshot`.
- ``epoch``: ``stage``, ``stage_name``, ``epoch``, ``loss``, ``lr``, ``seconds``,
  ``step``, ``time``: the estimator's ``history_`` record of each finished epoch.
- ``progress``: ``time`` and the fields of :class:`~tsimcne_widgets.progress.Progress`; at most
  about one a second, and at every pause and resume.
- ``end``: ``state`` ('finished', 'stopped' or 'failed'), ``error`` (``"Type: message"``
  of a failure, else None), ``time``.

Non-finite numbers (a NaN loss) are written as ``null``. Readers ignore record types and
fields they do not know, so later versions can add some.

**No half files.** A ``.npy`` is written under a temporary name (starting with ``.``)
and renamed into place with ``os.replace``; its index line is appended only then, as a
single ``write`` of a whole line, and flushed. ``meta.json`` and ``control.json`` are
replaced atomically too. A reader therefore reads only files named in the index, ignores
a last line without its newline until it is complete, and skips, with one warning each,
a malformed line or a snapshot whose file is missing, truncated or of the wrong shape.
Other files in the directory are never read.

**Fresh and resumed runs.** A run that starts from scratch deletes the layout's files
(the names above, nothing else) and begins a new index with a new session. A run that
continues from a checkpoint (it has steps done already) appends to the index, numbering
its snapshots on; its ``start`` record carries the step it continues from, and readers
drop snapshots and epochs of the earlier session beyond that step (written after the
checkpoint it resumed from). A reader that finds the index replaced by a new session
starts over.

**Control.** ``control.json`` holds ``{"command": "pause" | "resume" | "stop", "seq",
"time"}`` (:func:`write_control`). A run with a ``snapshot_dir`` checks it at batch
boundaries, with one ``stat`` at most every 0.5 s (also while paused), and obeys each
new version of the file once. A run deletes a stale ``control.json`` when it starts.

Only one process writes a directory (under torchrun: rank 0).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import socket
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from ._atomic import TEMP_NAME, atomic_write
from .snapshots import Snapshot

__all__ = ["FORMAT_VERSION", "COMMANDS", "RunDirWarning", "RunDirWriter", "RunDirReader",
           "read_meta", "read_snapshots", "write_control"]

FORMAT_VERSION = 1
META = "meta.json"
INDEX = "index.jsonl"
CONTROL = "control.json"
INDICES = "indices.npy"
COMMANDS = ("pause", "resume", "stop")
_SNAPSHOT_RE = re.compile(r"snapshot-(\d+)\.npy")
# A file a record may name: the layout's own .npy names, never a path elsewhere.
_DATA_RE = re.compile(r"(snapshot-\d+|indices(-\d+)?)\.npy")


class RunDirWarning(UserWarning):
    """Something in a run directory could not be read and was skipped."""


def _clean(value):
    """``value`` for JSON: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(record: dict) -> bytes:
    return (json.dumps(_clean(record), allow_nan=False, separators=(",", ":")) + "\n").encode()


def _stage_record(stage) -> dict:
    if dataclasses.is_dataclass(stage):
        return dataclasses.asdict(stage)
    if isinstance(stage, dict):
        return dict(stage)
    return {"name": getattr(stage, "name", ""), "epochs": int(stage.epochs)}


class RunDirWriter:
    """Writes a run directory: snapshots, progress and the end of a run, for watchers.

    See :mod:`tsimcne_widgets.run_dir` for the layout. ``TSimCNE.start(snapshot_dir=...)``
    uses one; a custom training loop (or rank 0 of a distributed one) can use it on its
    own. Not thread-safe: call it from one thread.

    Parameters
    ----------
    path : str or Path
        The directory; created if missing.
    resume : bool, default=False
        Continue the directory's index (a run resumed from a checkpoint). Otherwise the
        layout's files are deleted first and a new index begins.
    step : int, default=0
        Steps already done when the run starts (recorded in the ``start`` record).
    progress_interval : float, default=1.0
        Least seconds between two progress records (see :meth:`write_progress`).
    control_interval : float, default=0.5
        Least seconds between two looks at ``control.json`` (see :meth:`poll_control`).
    fsync : bool, default=False
        ``os.fsync`` every file and index line: safer against a machine crash, slower.

    Attributes
    ----------
    path : Path
    session : str
        The index's session id (that of the existing index when resuming one).
    """

    def __init__(self, path, *, resume=False, step=0, progress_interval=1.0,
                 control_interval=0.5, fsync=False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__}.")
        self.path = Path(path)
        self.progress_interval = float(progress_interval)
        self.control_interval = float(control_interval)
        self.fsync = bool(fsync)
        self.path.mkdir(parents=True, exist_ok=True)
        self.session = uuid.uuid4().hex
        previous = _first_record(self.path / INDEX) if resume else None
        if previous is not None and isinstance(previous.get("session"), str):
            self.session = previous["session"]
        else:
            resume = False
            self._clear()
        # An old command must never act on this run.
        (self.path / CONTROL).unlink(missing_ok=True)
        self._seq = 1 + max((int(m.group(1)) for p in self.path.iterdir()
                             if (m := _SNAPSHOT_RE.fullmatch(p.name))), default=-1)
        self._indices: list[tuple[np.ndarray, str]] = []
        self._last_progress = -math.inf
        self._control_checked = -math.inf
        self._control_sig = None
        self._fd = os.open(self.path / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._append({"type": "start", "session": self.session, "resumed": bool(resume),
                      "step": int(step), "time": time.time(), "pid": os.getpid(),
                      "host": socket.gethostname()})

    # -- writing --------------------------------------------------------------------------
    def write_meta(self, *, n_samples, schedule, steps_per_epoch, batch_size, precision="",
                   n_points=None, control=True, **extra) -> None:
        """Write ``meta.json`` (atomically; a resumed run replaces it).

        Parameters
        ----------
        n_samples : int
            Number of training images.
        schedule : list of Stage or dict
            The stages; each written with at least ``name`` and ``epochs``.
        steps_per_epoch, batch_size : int
        precision : str, default=''
        n_points : int, optional
            Points per snapshot; default ``n_samples``.
        control : bool, default=True
            Whether the run obeys ``control.json`` (see :meth:`poll_control`).
        **extra
            More JSON-serialisable fields (``image_shape``, ``n_channels``, ...).
        """
        stages = [_stage_record(s) for s in schedule]
        meta = {"format": FORMAT_VERSION, "session": self.session, "n_samples": int(n_samples),
                "n_points": int(n_samples if n_points is None else n_points),
                "schedule": stages, "steps_per_epoch": int(steps_per_epoch),
                "total_steps": int(steps_per_epoch) * sum(int(s["epochs"]) for s in stages),
                "batch_size": int(batch_size), "precision": str(precision),
                "control": bool(control), "time": time.time(), **extra}
        data = json.dumps(_clean(meta), allow_nan=False, indent=1).encode()
        atomic_write(self.path / META, lambda f: f.write(data), fsync=self.fsync)

    def write_snapshot(self, snapshot: Snapshot) -> str:
        """Write ``snapshot``'s positions to the next ``snapshot-NNNNNN.npy``, then its
        index record. Returns the file's name."""
        name = f"snapshot-{self._seq:06d}.npy"
        xy = np.ascontiguousarray(snapshot.xy, dtype=np.float32)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"snapshot.xy must have shape (n, 2), got {xy.shape}.")
        indices = None if snapshot.indices is None else self._indices_file(snapshot.indices)
        atomic_write(self.path / name, lambda f: np.save(f, xy, allow_pickle=False),
                     fsync=self.fsync)
        self._seq += 1
        self._append({"type": "snapshot", "file": name, "stage": int(snapshot.stage),
                      "epoch": int(snapshot.epoch), "step": int(snapshot.step),
                      "loss": float(snapshot.loss), "kind": snapshot.kind,
                      "time": float(snapshot.time), "indices": indices})
        return name

    def write_epoch(self, record: dict) -> None:
        """Append an ``epoch`` record: a finished epoch's ``history_`` entry (``stage``,
        ``stage_name``, ``epoch``, ``loss``, ``lr``, ``seconds``) and ``step``."""
        self._append({"type": "epoch", **record, "time": time.time()})

    def write_progress(self, progress, *, force=False) -> bool:
        """Append a ``progress`` record of ``progress`` (a :class:`Progress` or a dict),
        unless one was written less than ``progress_interval`` seconds ago and not
        ``force``. Returns whether it was written."""
        now = time.monotonic()
        if not force and now - self._last_progress < self.progress_interval:
            return False
        fields = dataclasses.asdict(progress) if dataclasses.is_dataclass(progress) else dict(
            progress)
        self._append({"type": "progress", **fields, "time": time.time()})
        self._last_progress = now
        return True

    def write_end(self, state: str, error: BaseException | str | None = None) -> None:
        """Append the ``end`` record (``state``: 'finished', 'stopped' or 'failed') and
        close the index."""
        if state not in ("finished", "stopped", "failed"):
            raise ValueError(f"state must be 'finished', 'stopped' or 'failed', got {state!r}.")
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        self._append({"type": "end", "state": state, "error": error, "time": time.time()})
        self.close()

    def close(self) -> None:
        """Close the index file; safe to call more than once."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    # -- control --------------------------------------------------------------------------
    def poll_control(self) -> str | None:
        """A new command from ``control.json`` ('pause', 'resume' or 'stop'), or None.

        Cheap enough for every batch: it looks at the file (one ``stat``) at most every
        ``control_interval`` seconds, and reads it only when it was replaced. Each
        version of the file is returned once; an unreadable one is ignored with a warning.
        """
        now = time.monotonic()
        if now - self._control_checked < self.control_interval:
            return None
        self._control_checked = now
        path = self.path / CONTROL
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if sig == self._control_sig:
            return None
        self._control_sig = sig
        try:
            command = json.loads(path.read_bytes()).get("command")
        except (OSError, ValueError, AttributeError) as exc:
            warnings.warn(f"{path}: ignored, not a control record ({exc})", RunDirWarning,
                          stacklevel=2)
            return None
        if command not in COMMANDS:
            warnings.warn(f"{path}: ignored the unknown command {command!r}", RunDirWarning,
                          stacklevel=2)
            return None
        return command

    # -- internals ------------------------------------------------------------------------
    def _append(self, record: dict) -> None:
        if self._fd is None:
            raise ValueError(f"the index of {self.path} is closed (the run has ended).")
        line = memoryview(_dumps(record))
        while line:  # one write() for a whole line; the loop only guards short writes
            line = line[os.write(self._fd, line):]
        if self.fsync:
            os.fsync(self._fd)

    def _indices_file(self, indices) -> str:
        indices = np.asarray(indices, dtype=np.int64)
        if not self._indices and (self.path / INDICES).exists():
            try:  # a resumed run: reuse the subsample file of the earlier session
                self._indices.append((np.load(self.path / INDICES), INDICES))
            except (OSError, ValueError, EOFError):
                pass
        for known, name in self._indices:
            if np.array_equal(known, indices):
                return name
        name = INDICES if not (self.path / INDICES).exists() else (
            f"indices-{self._seq:06d}.npy")
        atomic_write(self.path / name, lambda f: np.save(f, indices, allow_pickle=False),
                     fsync=self.fsync)
        self._indices.append((indices, name))
        return name

    def _clear(self) -> None:
        # The index first: a reader never pairs a new meta.json with the old index.
        for name in (INDEX, META, CONTROL):
            (self.path / name).unlink(missing_ok=True)
        for p in self.path.iterdir():
            tmp = TEMP_NAME.fullmatch(p.name)  # left by a crash between write and rename
            name = tmp.group(1) if tmp else p.name
            if _DATA_RE.fullmatch(name) or (tmp and name in (META, CONTROL)):
                p.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def write_control(path, command: str) -> None:
    """Ask the training process writing run directory ``path`` to 'pause', 'resume' or
    'stop', through ``control.json`` (replaced atomically)."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(map(repr, COMMANDS))}, got "
                         f"{command!r}.")
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a run directory.")
    seq = 0
    try:
        seq = int(json.loads((path / CONTROL).read_bytes()).get("seq", 0)) + 1
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    data = json.dumps({"command": command, "seq": seq, "time": time.time()}).encode()
    atomic_write(path / CONTROL, lambda f: f.write(data), fsync=False)


def read_meta(path) -> dict | None:
    """The ``meta.json`` of run directory ``path``, or None if it has none (yet) or it
    cannot be read."""
    try:
        meta = json.loads((Path(path) / META).read_bytes())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _first_record(index: Path) -> dict | None:
    try:
        with open(index, "rb") as f:
            line = f.readline()
        return json.loads(line) if line.endswith(b"\n") else None
    except (OSError, ValueError):
        return None


def _float(value) -> float:
    return float("nan") if value is None else float(value)


class RunDirReader:
    """Reads a run directory as it grows: new index records, and the snapshots they name.

    Used by :class:`~tsimcne_widgets.watch.WatchedRun` and :func:`read_snapshots`. Each
    problem (a malformed line, a missing or truncated file) is warned about once, with a
    :class:`RunDirWarning`, and skipped.

    Parameters
    ----------
    path : str or Path
        The run directory. It need not exist yet.
    """

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__}.")
        self.path = Path(path)
        self._offset = 0
        self._head = b""  # the index's first line: a different one means a new session
        self._indices: dict[str, np.ndarray] = {}
        self._warned: set = set()

    def read_meta(self) -> dict | None:
        """``meta.json``, or None."""
        return read_meta(self.path)

    def poll(self) -> tuple[bool, list[dict]]:
        """The complete index records added since the last call.

        Returns
        -------
        reset : bool
            True when the index was replaced by a new session (a fresh run in the same
            directory): the records are then the new index's, from its start.
        records : list of dict
        """
        index = self.path / INDEX
        try:
            f = open(index, "rb")
        except FileNotFoundError:
            return False, []
        with f:
            reset = False
            if self._head:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset or f.read(len(self._head)) != self._head:
                    reset = True
                    self._offset, self._head = 0, b""
                    self._indices.clear()
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a last line without its newline is still being written
        lines = data[:end].split(b"\n")[:-1]
        records = []
        for line in lines:
            if not self._head:
                self._head = line + b"\n"
            where = self._offset
            self._offset += len(line) + 1
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict) or not isinstance(rec.get("type"), str):
                    raise ValueError("not a record with a 'type'")
            except ValueError as exc:
                self._warn(("line", where), f"{index}: ignored a malformed line at byte "
                                            f"{where} ({exc})")
                continue
            records.append(rec)
        return reset, records

    def load(self, record: dict) -> Snapshot | None:
        """The :class:`Snapshot` of a ``snapshot`` record, or None (with a warning once)
        when its file is missing, truncated or not an ``(n, 2)`` array."""
        name = record.get("file")
        try:
            xy = self._load_array(name)
            if xy.ndim != 2 or xy.shape[1] != 2 or xy.dtype.kind != "f":
                raise ValueError(f"expected float positions of shape (n, 2), got "
                                 f"{xy.dtype} {xy.shape}")
            indices = None
            if record.get("indices") is not None:
                indices = self._load_indices(record["indices"])
                if indices.shape != (len(xy),):
                    raise ValueError(f"{record['indices']} has {indices.shape} indices for "
                                     f"{len(xy)} points")
            return Snapshot(np.ascontiguousarray(xy, dtype=np.float32),
                            int(record["stage"]), int(record["epoch"]), int(record["step"]),
                            _float(record.get("loss")), str(record.get("kind", "embedding")),
                            indices, _float(record.get("time", time.time())))
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            self._warn(("file", name), f"{self.path}: skipped snapshot {name!r} "
                                       f"({type(exc).__name__}: {exc})")
            return None

    def _load_array(self, name) -> np.ndarray:
        if not isinstance(name, str) or not _DATA_RE.fullmatch(name):
            raise ValueError("not a file name of the run directory layout")
        return np.load(self.path / name, allow_pickle=False)

    def _load_indices(self, name) -> np.ndarray:
        if name not in self._indices:
            idx = self._load_array(name)
            if idx.ndim != 1 or idx.dtype.kind not in "iu":
                raise ValueError(f"{name} is not a 1-D integer array")
            idx = idx.astype(np.int64)
            idx.setflags(write=False)
            self._indices[name] = idx
        return self._indices[name]

    def _warn(self, key, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RunDirWarning, stacklevel=3)


def read_snapshots(path) -> list[Snapshot]:
    """All snapshots of run directory ``path`` (a finished run, or one so far), oldest
    first.

    Snapshots of an earlier session that a resumed run replaced are left out (see the
    module docstring); unreadable ones are skipped with a :class:`RunDirWarning`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of Snapshot
    """
    reader = RunDirReader(path)
    if not reader.path.is_dir():
        raise ValueError(f"{reader.path} is not a directory.")
    _, records = reader.poll()
    kept: list[dict] = []
    for rec in records:
        if rec["type"] == "start" and rec.get("resumed"):
            step = rec.get("step", math.inf)
            kept = [r for r in kept if r.get("step", 0) <= step]
        elif rec["type"] == "snapshot":
            kept.append(rec)
    return [s for s in map(reader.load, kept) if s is not None]
