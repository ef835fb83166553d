"""Whose neighbours are purest: the pixels', a short run's backbone features', or both?

Trains ``cpu_recipe()`` with a time budget on a Fashion-MNIST subset, then, for each space
(PCA to 50 dimensions), prints the share of the 15 nearest neighbours that share the
image's class, a kNN classifier in that space, and t-SNE of it (openTSNE defaults):

    python bench/neighbor_sources.py --budget 4min

Protocol: ``metrics.knn_accuracy(..., k=15, random_state=0)``. "concat wW" joins the
pixels' and W times the features' 50 components, each scaled to unit mean squared norm:
100 columns for the kNN classifier, which the neighbour search and t-SNE reduce to 50
again with their own PCA.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from fashion_setup import fit_recipe, load_subset, machine
from map_scores import knn

from tsimcne_widgets.baselines import embed
from tsimcne_widgets.neighbors import pixel_neighbors


def pca(a: np.ndarray, d: int = 50) -> np.ndarray:
    a = a - a.mean(0)
    return a @ np.linalg.svd(a, full_matrices=False)[2][:d].T


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.sqrt((a ** 2).sum(1).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--budget", default="4min")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data = load_subset(args.subset)
    codes = np.unique(np.asarray(data.labels), return_inverse=True)[1]
    print(f"# {machine()}; Fashion-MNIST subset {args.subset}; "
          f"cpu_recipe(time_budget={args.budget!r}), seed {args.seed}", flush=True)
    est, Z, seconds = fit_recipe(data, args.budget, args.seed)
    print(json.dumps({"map": knn(Z, data.labels), "seconds": round(seconds),
                      "epochs": [st.epochs for st in est.schedule_]}), flush=True)
    X = torch.as_tensor(np.asarray(data.images)).float()
    X = X.reshape(len(X), -1, *X.shape[-2:])
    x14 = F.interpolate(X, size=(14, 14), mode="bilinear", antialias=True)
    feats = est.backbone_features(data)
    spaces = {"pixels 14x14": pca(x14.flatten(1).numpy()),
              "pixels 28x28": pca(X.flatten(1).numpy()),
              "features": pca(feats),
              "features, L2-normalised": pca(feats / np.linalg.norm(feats, axis=1,
                                                                     keepdims=True))}
    for w in (0.5, 1.0):
        spaces[f"concat w{w}"] = np.hstack([unit(spaces["pixels 14x14"]),
                                            w * unit(spaces["features"])])
    for name, v in spaces.items():
        nbrs = pixel_neighbors(torch.as_tensor(v, dtype=torch.float32)[:, :, None, None],
                               15).numpy()
        t0 = time.perf_counter()
        T = embed(v, "tsne", random_state=0)
        print(json.dumps({"space": name,
                          "same_class_15nn": round(float((codes[nbrs] == codes[:, None])
                                                         .mean()), 4),
                          "knn": knn(v, data.labels), "tsne": knn(T, data.labels),
                          "tsne_seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
