"""One atomic file writer for checkpoints, caches and run directories (_atomic.py)."""

import os
import stat

import pytest

from tsimcne_widgets._atomic import TEMP_NAME, atomic_write


def test_writes_the_whole_file_with_umask_permissions(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["a.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    seen = []

    def fail(f):
        f.write(b"half")
        seen.extend(os.listdir(tmp_path))
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(target), fail, fsync=False)
    assert target.read_bytes() == b"old"
    temp = [n for n in seen if n != "a.bin"]
    assert len(temp) == 1 and TEMP_NAME.fullmatch(temp[0]).group(1) == "a.bin"
    assert os.listdir(tmp_path) == ["a.bin"]
