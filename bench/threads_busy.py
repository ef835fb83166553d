"""Training throughput with n_threads='auto' against fixed thread counts, on an idle machine
and with other CPU-bound processes running, side by side in one run.

    python bench/threads_busy.py                    # small CNN, 8x8, batch 128, fp32
    python bench/threads_busy.py --backbone fast --image-size 28 --busy 0,1

Each condition runs every setting in turn over ``--rounds`` rounds (so drifting load hits
all alike) and prints the median views/s of each. Views/s come from ``history_`` (the
steps' own time, probes included) over stage-1 epochs of ``--steps`` steps.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_name  # noqa: E402

from tsimcne_widgets import TSimCNE  # noqa: E402
from tsimcne_widgets.threads import available_cores, thread_candidates  # noqa: E402


def spin() -> None:
    while True:
        pass


def measure(args, n_threads) -> tuple[float, object]:
    n = args.batch_size * args.steps
    X = np.random.default_rng(0).integers(
        0, 256, (n, args.channels, args.image_size, args.image_size), dtype=np.uint8)
    est = TSimCNE(backbone=args.backbone, batch_size=args.batch_size,
                  total_epochs=(args.epochs, 0, 0), warmup_epochs=0, device="cpu",
                  mixed_precision=args.precision == "bf16", n_threads=n_threads,
                  random_state=0, verbose=False)
    est.fit(X)
    seconds = sum(h["seconds"] for h in est.history_)
    return 2 * n * args.epochs / seconds, est.n_threads_


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="small")
    p.add_argument("--image-size", type=int, default=8)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--busy", default="0,1", help="numbers of competing spinning processes")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    settings = [*thread_candidates(available_cores()), "auto"]
    print(f"{cpu_name()}; {available_cores()} cores; {args.backbone} "
          f"{args.image_size}x{args.image_size}x{args.channels}, batch {args.batch_size}, "
          f"{args.precision}, {args.epochs} epochs of {args.steps} steps per measurement")
    for busy in [int(b) for b in args.busy.split(",")]:
        procs = [mp.Process(target=spin, daemon=True) for _ in range(busy)]
        for proc in procs:
            proc.start()
        time.sleep(0.5)
        try:
            results: dict = {s: [] for s in settings}
            chosen = []
            for _ in range(args.rounds):
                for s in settings:
                    vps, used = measure(args, s)
                    results[s].append(vps)
                    if s == "auto":
                        chosen.append(used)
        finally:
            for proc in procs:
                proc.terminate()
        med = {s: statistics.median(v) for s, v in results.items()}
        best = max(v for s, v in med.items() if s != "auto")
        print(f"\n{busy} competing process(es):")
        for s in settings:
            label = f"n_threads={s!r}"
            extra = f"  ({med[s] / best:.1%} of the best fixed; ended on {chosen})" if (
                s == "auto") else ""
            print(f"  {label:<18} {med[s]:8.1f} views/s  "
                  f"[{', '.join(f'{v:.0f}' for v in results[s])}]{extra}")


if __name__ == "__main__":
    main()
