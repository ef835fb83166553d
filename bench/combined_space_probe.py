"""Would a map of the backbone features *and* the pixels pass pixel t-SNE?

For the benches' Fashion-MNIST subset, prints the kNN accuracy (the quality goals'
protocol) of the pixels, of a run's backbone features, and of both side by side (each block
centred and scaled to unit mean row norm, the features weighted by ``w``); then of openTSNE
maps of each (PCA-50 first). The run is either read from ``fashion_curve.py --save`` or
trained here with ``cpu_recipe(time_budget=...)`` for each seed, with a mean ± SD row.
The join is the package's ``baselines.joined_features`` (the ``":features+pixels"``
comparison panels); ``neighbor_sources.py`` compares more spaces, with neighbour purity,
on one run.

    python bench/combined_space_probe.py --saved /tmp/curve30.npz
    python bench/combined_space_probe.py --budget 10min --seeds 0,1,2 --weights 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fashion_setup import fit_recipe, load_subset, machine
from map_scores import knn

from tsimcne_widgets import baselines


def scores(x: np.ndarray, labels) -> tuple[float, float, float]:
    """kNN of ``x``, kNN of its t-SNE map, and the seconds t-SNE took."""
    t0 = time.perf_counter()
    z = baselines.embed(x, "tsne", random_state=0)
    return knn(x, labels), knn(z, labels), time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--saved", help=".npz from fashion_curve.py --save")
    p.add_argument("--budget", default="10min", help="train runs of this budget instead")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--weights", default="0.5,1,2")
    args = p.parse_args()
    data = load_subset(args.subset)
    labels = data.labels
    pixels = baselines.pixel_features(data)
    weights = [float(v) for v in args.weights.split(",")]
    source = f"run {args.saved}" if args.saved else f"cpu_recipe, budget {args.budget}"
    print(f"# {machine()}; Fashion-MNIST subset {args.subset}; {source}", flush=True)
    k, t, s = scores(pixels, labels)
    print(f"{'pixels':28s} kNN {k:.3f}   t-SNE {t:.3f} ({s:.0f} s)", flush=True)
    rows: dict[str, list[float]] = {}
    for seed in [None] if args.saved else [int(v) for v in args.seeds.split(",")]:
        if seed is None:
            saved = np.load(args.saved)
            assert np.array_equal(saved["labels"], labels), "saved run is of another subset"
            Z, H, tag = saved["map"], saved["features"], ""
        else:
            est, Z, secs = fit_recipe(data, args.budget, seed)
            H = est.backbone_features(data)
            tag = f"seed {seed}: "
            print(f"{tag}{secs:.0f} s, epochs {[st.epochs for st in est.schedule_]}, "
                  f"{est.precision_}/{est.memory_format_}", flush=True)
        name, k = "the run's 2D map", knn(Z, labels)
        rows.setdefault(name, []).append(k)
        print(f"{tag}{name:28s} kNN {k:.3f}", flush=True)
        spaces = {"features": H}
        joined = baselines.joined_features(H, pixels)
        for w in weights:
            spaces[f"features x{w:g} + pixels"] = np.hstack(
                [w * joined[:, :H.shape[1]], joined[:, H.shape[1]:]])
        for name, x in spaces.items():
            k, t, s = scores(x, labels)
            rows.setdefault(f"t-SNE of {name}", []).append(t)
            print(f"{tag}{name:28s} kNN {k:.3f}   t-SNE {t:.3f} ({s:.0f} s)", flush=True)
    if len(next(iter(rows.values()))) > 1:
        for name, v in rows.items():
            print(f"mean over seeds: {name:36s} {np.mean(v):.3f} ± {np.std(v):.3f}")


if __name__ == "__main__":
    main()
