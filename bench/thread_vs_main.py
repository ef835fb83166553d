"""Why CPU training in a background thread is slower than in the main thread.

The same ResNet18 training steps (bf16 autocast, channels_last, batch 128 of 32x32) are timed
in the main thread and in a ``threading.Thread``; each mode runs in a fresh process, also under
``OMP_WAIT_POLICY=PASSIVE``. Printed per mode: seconds for the steps and the cores busy meanwhile.

On the 2-core machine (torch 2.14.1, GNU OpenMP): main 2.59-2.66 s at 1.99 cores, thread
3.03-3.13 s at 1.68-1.70 cores, thread after releasing the caller's workers 2.73 s at 1.99
cores; with PASSIVE the main thread is as slow as the thread (3.03-3.05 s, 1.68 cores).
libgomp spins briefly for work between parallel regions only while it manages no more
threads than CPUs; a team started from a second thread adds to the initial thread's, so
it sleeps and wakes on every small region instead. GOMP_SPINCOUNT does not change that, and
OMP_WAIT_POLICY=ACTIVE makes the idle team spin forever (14-15 s). It happens only where the
main thread has run a parallel region before (this script: a large tensor op there);
TrainingRun.start releases the caller's idle workers first (tsimcne_widgets/_openmp.py),
which the "thread-released" line shows.

Run:  .venv/bin/python bench/thread_vs_main.py [--steps 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time


def steps(k: int) -> tuple[float, float]:
    import torch
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=128).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    x = torch.randn(128, 3, 32, 32).to(memory_format=torch.channels_last)

    def one():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = m(x).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(k):
        one()
    wall = time.perf_counter() - t
    return wall, (time.process_time() - c) / wall


def child(mode: str, k: int) -> None:
    import torch

    torch.randn(4_000_000).exp_().sum()  # the caller's thread has an OpenMP team, as in Jupyter
    if mode == "thread-released":
        from tsimcne_widgets._openmp import release_caller_workers

        release_caller_workers()
    if mode == "main":
        wall, cores = steps(k)
    else:
        out = {}
        th = threading.Thread(target=lambda: out.setdefault("r", steps(k)))
        th.start()
        th.join()
        wall, cores = out["r"]
    print(f"{wall:.2f} {cores:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--child", choices=["main", "thread", "thread-released"])
    a = ap.parse_args()
    if a.child:
        child(a.child, a.steps)
        return
    for policy, mode in [(None, "main"), (None, "thread"), (None, "thread-released"),
                         ("PASSIVE", "main")]:
        env = dict(os.environ)
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--steps",
                              str(a.steps)], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        print(f"{mode:15s} OMP_WAIT_POLICY={policy or 'default':8s} {a.steps} steps: "
              f"{float(out[0]):.2f} s, {float(out[1]):.2f} cores busy", flush=True)

if __name__ == "__main__":
    main()
