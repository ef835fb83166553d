"""Training throughput of t-SimCNE in views per second (forward + backward + step).

Examples (the figures in the README):

    python bench/train_throughput.py --backbone resnet18 --image-size 32 --batch-size 256
    python bench/train_throughput.py --backbone small,fast --image-size 28 --channels 1 \
        --precision fp32 --rounds 3

Several comma-separated backbones are measured side by side, interleaved over ``--rounds``
so that a change in machine load hits all of them alike.

Random uint8 images; one epoch of ``--steps`` steps is timed after ``--warmup`` untimed
epochs of the same length. Prints one line per
precision. Views/s counts both views of every image (2 x batch size per step).
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from tsimcne_widgets import TSimCNE


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(args, backbone: str, precision: bool) -> float:
    """Views/s of stage-1 training steps, timed through the public ``fit`` and ``history_``.

    The data set holds ``steps`` batches, so one epoch is ``steps`` steps; the first
    ``warmup`` epochs are not timed.
    """
    rng = np.random.default_rng(0)
    n = args.batch_size * args.steps
    X = rng.integers(0, 256, size=(n, args.channels, args.image_size, args.image_size),
                     dtype=np.uint8)
    est = TSimCNE(backbone=backbone, batch_size=args.batch_size,
                  total_epochs=(args.warmup + 1, 0, 0), warmup_epochs=0, device=args.device,
                  mixed_precision=precision, random_state=0, verbose=False)
    est.fit(X)
    seconds = sum(h["seconds"] for h in est.history_[args.warmup:])
    return 2 * n / seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18", help="one name or several, comma-separated")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="steps in the timed epoch")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["bf16", "fp32", "both"], default="both")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    modes = {"bf16": [True], "fp32": [False], "both": [True, False]}[args.precision]
    backbones = args.backbone.split(",")
    print(f"{cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    results: dict = {}
    for r in range(args.rounds):
        for amp in modes:
            for backbone in backbones:
                vps = measure(args, backbone, amp)
                results.setdefault((backbone, amp), []).append(vps)
                print(f"round {r + 1}: {backbone} {args.image_size}x{args.image_size} batch "
                      f"{args.batch_size} {'bf16' if amp else 'fp32'}: {vps:.1f} views/s",
                      flush=True)
    if args.rounds > 1 or len(backbones) > 1:
        anchor = backbones[0]
        for (backbone, amp), values in results.items():
            ratio = np.median(values) / np.median(results[(anchor, amp)])
            print(f"median {backbone} {'bf16' if amp else 'fp32'}: {np.median(values):.1f} "
                  f"views/s ({ratio:.2f}x {anchor})")


if __name__ == "__main__":
    main()
