"""Training throughput of t-SimCNE in views per second (forward + backward + step).

Example (the figure in the README):

    python bench/train_throughput.py --backbone resnet18 --image-size 32 --batch-size 256

Random uint8 images; the first ``--warmup`` steps are not timed. Prints one line per
precision. Views/s counts both views of every image (2 x batch size per step).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tsimcne_widgets import TSimCNE
from tsimcne_widgets.data import as_images


def measure(args, precision: bool) -> float:
    rng = np.random.default_rng(0)
    n = args.batch_size * 2
    X = rng.integers(0, 256, size=(n, args.channels, args.image_size, args.image_size),
                     dtype=np.uint8)
    est = TSimCNE(backbone=args.backbone, batch_size=args.batch_size, total_epochs=1000,
                  device=args.device, mixed_precision=precision, random_state=0)
    data = as_images(X)
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    for _ in range(args.warmup):
        tr.step()
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        tr.step()
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * args.batch_size * args.steps / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["bf16", "fp32", "both"], default="both")
    args = p.parse_args()
    modes = {"bf16": [True], "fp32": [False], "both": [True, False]}[args.precision]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for amp in modes:
        vps = measure(args, amp)
        print(f"{args.backbone} {args.image_size}x{args.image_size} batch {args.batch_size} "
              f"{'bf16' if amp else 'fp32'}: {vps:.1f} views/s")


if __name__ == "__main__":
    main()
