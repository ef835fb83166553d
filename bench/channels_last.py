"""Is channels_last a win for the training step on this machine? Forward + backward of the
bare model (our loss, fixed views) in the contiguous and the channels_last layout,
interleaved over rounds, per backbone.

    python bench/channels_last.py [--rounds 3] [--precision fp32]

Training always uses channels_last today (the GPU and the Zen 4 CPU figures in the README
were measured with it); this checks the other machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_name  # noqa: E402

from tsimcne_widgets import TSimCNE  # noqa: E402
from tsimcne_widgets._device import autocast  # noqa: E402
from tsimcne_widgets.losses import cauchy_infonce  # noqa: E402

CASES = [("resnet18", 3, 32, 256), ("fast", 1, 28, 256), ("small", 1, 8, 128)]


def model_for(backbone, channels, size, batch, bf16):
    X = np.random.default_rng(0).integers(0, 256, (2 * batch, channels, size, size), np.uint8)
    est = TSimCNE(backbone=backbone, batch_size=batch, total_epochs=(1, 0, 0), warmup_epochs=0,
                  device="cpu", mixed_precision=bf16, n_threads=torch.get_num_threads(),
                  random_state=0, verbose=False).fit(X)
    return est.model_.train()


def views_per_s(model, views, bf16, steps):
    def step():
        model.zero_grad(set_to_none=True)
        with autocast(torch.device("cpu"), bf16):
            z = model(views)
        cauchy_infonce(z).backward()

    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return len(views) / statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()
    bf16 = args.precision == "bf16"
    print(f"{cpu_name()}; torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"{args.precision}; bare forward+backward, median of {args.steps} steps")
    for backbone, channels, size, batch in CASES:
        model = model_for(backbone, channels, size, batch, bf16)
        base = torch.rand(2 * batch, channels, size, size)
        layouts = {"contiguous": base.contiguous(),
                   "channels_last": base.contiguous(memory_format=torch.channels_last)}
        res = {k: [] for k in layouts}
        for _ in range(args.rounds):
            for name, views in layouts.items():
                fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
                model.to(memory_format=fmt)
                res[name].append(views_per_s(model, views, bf16, args.steps))
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"{backbone} {size}x{size}x{channels} batch {batch}: contiguous "
              f"{med['contiguous']:.1f}, channels_last {med['channels_last']:.1f} views/s "
              f"({med['channels_last'] / med['contiguous']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
