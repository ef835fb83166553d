"""Release the calling thread's OpenMP workers before training moves to another thread.

GNU OpenMP, torch's CPU thread pool on Linux, lets idle workers spin briefly for the next
parallel region only while it manages no more threads than there are CPUs. Workers left by
parallel work on the caller's thread (data preparation, the user's own tensor code) count
too, so a training thread's team would sleep and be woken around each of its many small
regions instead: 15-20% slower per ResNet18 step on 2 cores (bench/thread_vs_main.py).
``omp_pause_resource_all`` (OpenMP 5.0) frees the caller's idle workers; its next parallel
region simply starts new ones.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import torch


@functools.cache
def _pause_all():
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    names = ["libgomp.so.1", "libomp.dylib", "libiomp5.so"] if sys.platform != "win32" else []
    for name in [os.path.join(torch_lib, n) for n in names] + [None]:
        if name is not None and not os.path.exists(name):
            continue
        try:
            fn = ctypes.CDLL(name).omp_pause_resource_all
        except (OSError, AttributeError, TypeError):  # TypeError: no CDLL(None) on Windows
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


def release_caller_workers() -> bool:
    """Free the calling thread's idle OpenMP workers; False where that is not available."""
    fn = _pause_all()
    return fn is not None and fn(1) == 0  # 1: omp_pause_soft
