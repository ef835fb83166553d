"""What ``mixed_precision='auto'`` picks on this machine, what the pick costs, and whether
it is right: the probe's choice of precision and memory layout beside a longer timing of
all four settings, per backbone, in one run.

    python bench/precision_probe.py [--steps 4] [--rounds 2]

For each case, a one-epoch ``fit`` with 'auto' runs the probe (its wall time is measured
around the package's ``measure_speed``); then the bare model's forward+backward (our loss,
fixed views) is timed in every setting, interleaved over rounds, median of ``--steps``
steps. The probe is right when its pick is the fastest of the longer timing, or within
5 % of it.
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
from channels_last import views_per_s  # noqa: E402
from train_throughput import cpu_name  # noqa: E402

from tsimcne_widgets import TSimCNE, _device  # noqa: E402
from tsimcne_widgets import _setup as builder  # noqa: E402
from tsimcne_widgets._device import memory_format, setting_name  # noqa: E402

# (backbone, channels, size, batch): the README's ResNet18 figure, cpu_recipe() (28x28 seen
# at 14x14), the digits recipe, the small CNN at 8x8 and the fast one at 28x28.
CASES = [("resnet18", 3, 32, 256), ("fast", 1, 14, 128), ("fast", 1, 8, 128),
         ("small", 1, 8, 128), ("fast", 1, 28, 256)]
SETTINGS = [(False, True), (True, True), (False, False), (True, False)]


def probe(backbone, channels, size, batch):
    X = np.random.default_rng(0).integers(0, 256, (2 * batch, channels, size, size), np.uint8)
    spent = []
    measure = builder.measure_speed

    def timed(*a, **kw):
        t0 = time.perf_counter()
        out = measure(*a, **kw)
        spent.append(time.perf_counter() - t0)
        return out

    builder.measure_speed = timed
    try:
        est = TSimCNE(backbone=backbone, batch_size=batch, total_epochs=(1, 0, 0),
                      warmup_epochs=0, device="cpu", n_threads=torch.get_num_threads(),
                      random_state=0, verbose=False).fit(X)
    finally:
        builder.measure_speed = measure
    return est, sum(spent)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    bf16_ok = _device.bf16_supported(torch.device("cpu"))
    print(f"{cpu_name()}; torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"bf16 supported: {bf16_ok}; longer timing: median of {args.steps} steps, "
          f"{args.rounds} rounds")
    for backbone, channels, size, batch in CASES:
        est, seconds = probe(backbone, channels, size, batch)
        pick = (est.precision_ == "bf16", est.memory_format_ == "channels_last")
        model = est.model_.train()
        base = torch.rand(2 * batch, channels, size, size)
        res = {s: [] for s in SETTINGS}
        for _ in range(args.rounds):
            for bf16, last in SETTINGS:
                fmt = memory_format(last)
                model.to(memory_format=fmt)
                res[bf16, last].append(views_per_s(model, base.contiguous(memory_format=fmt),
                                                   bf16, args.steps))
        med = {s: statistics.median(v) for s, v in res.items()}
        best = max(med, key=med.get)
        t = est.precision_timings_ or {}
        probe_vps = ", ".join(f"{k} {t['views'] / v:.0f}" for k, v in t.items() if k != "views")
        verdict = "right" if med[pick] >= 0.95 * med[best] else "WRONG"
        print(f"{backbone} {size}x{size}x{channels} batch {batch}: picked "
              f"{setting_name(*pick)} in {seconds:.2f} s (probe views/s at {t.get('views')} "
              f"views: {probe_vps or 'not timed'})", flush=True)
        print("  longer timing, views/s: " + ", ".join(
            f"{setting_name(*s)} {med[s]:.0f}" for s in SETTINGS)
            + f"; pick = {med[pick] / med[best]:.0%} of the best ({verdict})", flush=True)


if __name__ == "__main__":
    main()
