"""The caller's OpenMP workers are released before a run trains in its own thread."""

import os
import threading
import time

import numpy as np
import pytest
import torch

from tsimcne_widgets import TSimCNE
from tsimcne_widgets._openmp import release_caller_workers


def os_threads() -> int:
    """This process's OS threads, once the count has held still for 0.1 s (threads left by
    earlier tests may still be ending)."""
    last, same = -1, 0
    for _ in range(200):
        n = len(os.listdir("/proc/self/task"))
        same = same + 1 if n == last else 0
        if same >= 2:
            return n
        last = n
        time.sleep(0.05)
    return last


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs an OpenMP team of 2 or more")
def test_release_frees_the_callers_idle_workers():
    def parallel_op():
        torch.randn(4_000_000).exp_().sum()  # large enough to run in parallel

    parallel_op()
    with_workers = os_threads()
    assert release_caller_workers()
    assert os_threads() == with_workers - (torch.get_num_threads() - 1)
    parallel_op()  # the next parallel region starts its workers again
    assert os_threads() == with_workers


def test_start_on_cpu_releases_the_callers_workers(monkeypatch):
    calls = []
    monkeypatch.setattr("tsimcne_widgets.run.release_caller_workers",
                        lambda: calls.append(threading.current_thread()) or True)
    X = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
    run = TSimCNE(backbone="small", total_epochs=(1, 1, 1), batch_size=32, device="cpu",
                  random_state=0).start(X, snapshot_every=0)
    run.wait(120)
    assert calls == [threading.current_thread()]
