"""Background-run figures on digits: snapshot overhead, control latency, memory.

    python bench/run_overhead.py [--epochs 50,20,200] [--batch-size 128]

1. Snapshot overhead: wall time of a run with the default ``snapshot_every`` against
   the same run with snapshots off (only the mandatory start/stage-end frames).
2. Control latency: seconds from ``pause()`` / ``stop()`` to the state change.
3. Memory: peak RSS after 50, 200 and 400 snapshots of a long run with the default
   history bound (200); it should stay flat once the bound is reached.
"""

from __future__ import annotations

import argparse
import resource
import time

from tsimcne_widgets import Augmentations, TSimCNE, load_digits
from tsimcne_widgets.cli import _epochs
from tsimcne_widgets.recipes import digits_recipe

_DEMO = digits_recipe()
DEMO_BATCH_SIZE, DEMO_EPOCHS, DEMO_LR = _DEMO["batch_size"], _DEMO["total_epochs"], _DEMO["lr"]


def make(epochs, batch_size, lr):
    return TSimCNE(backbone="small", total_epochs=epochs, batch_size=batch_size, lr=lr,
                   augmentations=Augmentations(hflip=0, crop_scale=(0.5, 1.0)),
                   random_state=0)


def timed_run(data, snapshot_every, args):
    est = make(args.epochs, args.batch_size, DEMO_LR)
    t0 = time.perf_counter()
    run = est.start(data, snapshot_every=snapshot_every)
    run.wait()
    return time.perf_counter() - t0, len(run.snapshots)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=_epochs, default=DEMO_EPOCHS)
    p.add_argument("--batch-size", type=int, default=DEMO_BATCH_SIZE)
    args = p.parse_args()
    data = load_digits()

    off, n_off = timed_run(data, None, args)
    on, n_on = timed_run(data, 0.5, args)
    print(f"snapshots off: {off:.1f} s ({n_off} frames); default snapshot_every=0.5: "
          f"{on:.1f} s ({n_on} frames); overhead {100 * (on / off - 1):+.1f}%")

    for action in ("pause", "stop"):
        run = make((1000, 1, 1), args.batch_size, DEMO_LR).start(data)
        time.sleep(2)
        t0 = time.perf_counter()
        getattr(run, action)()
        target = "paused" if action == "pause" else "stopped"
        while run.state != target:
            time.sleep(0.0005)
        print(f"{action}() -> {target}: {1000 * (time.perf_counter() - t0):.1f} ms", flush=True)
        run.stop()
        run.wait()

    # Memory: many snapshots quickly, so a 256-image subset (snapshots cost little).
    from tsimcne_widgets.data import as_images

    small = as_images(data.images[:256].numpy(), labels=data.labels[:256])
    counter = [0]
    run = make((100000, 1, 1), 64, DEMO_LR).start(small, snapshot_every=1e-9)
    run.on("snapshot", lambda snap: counter.__setitem__(0, counter[0] + 1))
    for mark in (50, 200, 400):
        while counter[0] < mark:
            time.sleep(0.05)
        print(f"after {counter[0]} snapshots: history holds {len(run.snapshots)}, "
              f"peak RSS {rss_mb():.0f} MB")
    run.stop()
    run.wait()


if __name__ == "__main__":
    main()
