"""Wall time of one schedule trained three ways: ``fit`` in the calling thread, ``start``
(a background run) without snapshots, and ``start`` with the default snapshots.

    python bench/run_modes.py --data digits                 # the demo's schedule
    python bench/run_modes.py --data cifar-sized --epochs 2,1,1 --backbone resnet18 --batch-size 512

``cifar-sized`` is 50,000 random 32x32 RGB images (CIFAR-10's shape; no download), so its
figures are per epoch of a CIFAR-10-sized data set. Prints one line per mode.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tsimcne_widgets import Augmentations, TSimCNE, as_images, load_digits
from tsimcne_widgets.metrics import knn_accuracy
from tsimcne_widgets.recipes import digits_recipe

_DEMO = digits_recipe()
DEMO_AUGMENTATIONS, DEMO_BATCH_SIZE = _DEMO["augmentations"], _DEMO["batch_size"]
DEMO_EPOCHS, DEMO_LR = _DEMO["total_epochs"], _DEMO["lr"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["digits", "cifar-sized"], default="digits")
    p.add_argument("--epochs", default=",".join(map(str, DEMO_EPOCHS)))
    p.add_argument("--backbone", default="small")
    p.add_argument("--batch-size", type=int, default=DEMO_BATCH_SIZE)
    p.add_argument("--modes", default="fit,start-no-snapshots,start")
    args = p.parse_args()
    epochs = tuple(int(e) for e in args.epochs.split(","))
    if args.data == "digits":
        data = load_digits()
        params = {"lr": DEMO_LR, "augmentations": Augmentations(**DEMO_AUGMENTATIONS)}
    else:
        rng = np.random.default_rng(0)
        data = as_images(rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8),
                         labels=rng.integers(0, 10, 50_000))
        params = {}
    n_views = 2 * data.n_samples * sum(epochs)
    print(f"torch {torch.__version__}, {args.data} ({data.n_samples} images), "
          f"{args.backbone}, batch {args.batch_size}, epochs {epochs}", flush=True)
    for mode in args.modes.split(","):
        est = TSimCNE(backbone=args.backbone, total_epochs=epochs, batch_size=args.batch_size,
                      random_state=0, **params)
        t0 = time.perf_counter()
        n_snaps = 0
        if mode == "fit":
            est.fit(data)
        else:
            every = None if mode == "start-no-snapshots" else 0.5  # None: stage ends only
            run = est.start(data, snapshot_every=every)
            run.wait()
            n_snaps = len(run.snapshots)
        dt = time.perf_counter() - t0
        acc = knn_accuracy(est.embedding_, data.labels, k=15)
        print(f"{mode:20s} {dt:8.1f} s  {n_views / dt:9.0f} views/s  {n_snaps:4d} snapshots"
              f"  kNN {acc:.3f}  on {est.device_}", flush=True)


if __name__ == "__main__":
    main()
