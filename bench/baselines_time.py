"""Wall time of the t-SNE and UMAP baselines, and the digits metrics table.

    python bench/baselines_time.py [--model digits.pt] [--n-random 60000]

1. Digits: trains the demo's t-SimCNE (or loads ``--model``), takes its backbone
   features, times t-SNE and UMAP on them and prints the comparison's metrics table.
2. Random: times t-SNE and UMAP on ``--n-random`` random 512-D features.
Both methods use their defaults with a PCA to 50-D first (the package default).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tsimcne_widgets import TSimCNE, load_digits
from tsimcne_widgets.baselines import embed
from tsimcne_widgets.comparison_metrics import metrics_table


def timed(features, method):
    t0 = time.perf_counter()
    Z = embed(features, method, random_state=0)
    return Z, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", help="a saved TSimCNE trained on digits (default: train one)")
    p.add_argument("--n-random", type=int, default=60000)
    args = p.parse_args()
    digits = load_digits()
    if args.model:
        est = TSimCNE.load(args.model)
    else:
        from tsimcne_widgets.recipes import digits_recipe

        est = TSimCNE(**digits_recipe(backbone="small", time_budget=None), random_state=0)
        est.fit(digits)
    H = est.backbone_features(digits)
    embed(H[:200], "umap", random_state=0)  # JIT-compile umap/pynndescent outside timing
    emb = {"t-SimCNE": est.transform(digits)}
    for method, name in (("tsne", "t-SNE"), ("umap", "UMAP")):
        emb[name], sec = timed(H, method)
        print(f"digits ({len(H)} x {H.shape[1]}): {name} {sec:.1f} s")
    print(metrics_table(emb, digits.labels, H).round(3).to_string())
    R = np.random.default_rng(0).normal(size=(args.n_random, 512)).astype(np.float32)
    for method, name in (("tsne", "t-SNE"), ("umap", "UMAP")):
        _, sec = timed(R, method)
        print(f"random ({args.n_random} x 512): {name} {sec:.1f} s")


if __name__ == "__main__":
    main()
