"""Writing a file so that a reader sees the old file or the whole new one, never half.

The data goes to a temporary file beside the target, which is then renamed over it
(:func:`os.replace` is atomic within a folder). A failed write removes its temporary file;
a crash between write and rename can leave one, named as :data:`TEMP_NAME` matches.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["TEMP_NAME", "atomic_write"]

#: The temporary names :func:`atomic_write` uses: ``.<target name>.<random>.tmp``.
TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]+\.tmp")

# mkstemp makes files private (0600); the finished file gets the usual umask permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *,
                 fsync: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    write : callable
        Writes the content to the binary file object it is given.
    fsync : bool, default=True
        Flush the data to the disk before the rename, so that a machine crash cannot leave
        an empty file under the final name. Costs a disk round trip per file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
