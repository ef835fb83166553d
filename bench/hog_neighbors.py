"""Neighbours in pixel space against neighbours in HOG space, on the Fashion-MNIST subset.

For each space: how many of an image's 15 nearest neighbours (Euclidean, PCA-50: the
search ``neighbor_positives`` runs) share its class, kNN accuracy of the space itself, and
the kNN accuracy of openTSNE's map of it. The first says how good the positive pairs of
``neighbor_space`` are; the last is the baseline a HOG-paired t-SimCNE map should be read
against, beside pixel t-SNE.

    python bench/hog_neighbors.py --subset 10000
    python bench/hog_neighbors.py --variants   # purity only: k and HOG's parameters
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from fashion_setup import load_subset, machine
from map_scores import knn

from tsimcne_widgets.baselines import embed
from tsimcne_widgets.hog import hog_features
from tsimcne_widgets.neighbors import image_neighbors
from tsimcne_widgets.pixels import resize_images


def share_in_class(nbrs: torch.Tensor, y: np.ndarray) -> float:
    """The share of the neighbours ``nbrs`` (N, k) in their image's class."""
    nbrs = nbrs.numpy()
    return round(float((y[nbrs] == y[:, None]).mean()), 4)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--no-tsne", action="store_true")
    p.add_argument("--variants", action="store_true",
                   help="only the share of neighbours in class, for k and HOG variants")
    args = p.parse_args()
    data = load_subset(args.subset)
    y = np.asarray(data.labels)
    images = torch.as_tensor(np.asarray(data.images))
    if args.variants:
        return variants(images, y, args.subset)
    small = resize_images(images, (14, 14))  # what the backbone sees (uint8)
    print(f"# {machine()}; Fashion-MNIST subset {args.subset} (random_state=0)")
    spaces = {
        "pixels 28x28": (images, "pixels", images.reshape(len(y), -1).float()),
        "pixels 14x14 (what the backbone sees)": (small, "pixels",
                                                  small.reshape(len(y), -1).float()),
        "HOG 28x28 (neighbor_space='hog')": (images, "hog", hog_features(images)),
        "HOG 14x14": (small, "hog", hog_features(small)),
    }
    for name, (imgs, space, feats) in spaces.items():
        t0 = time.perf_counter()
        nbrs = image_neighbors(imgs, 15, space)
        row = {"space": name, "search_s": round(time.perf_counter() - t0, 1),
               "share_of_15_neighbours_in_class": share_in_class(nbrs, y),
               "knn_space": knn(feats.numpy(), y)}
        if not args.no_tsne:
            t0 = time.perf_counter()
            row["knn_tsne"] = knn(embed(feats.numpy(), "tsne", random_state=0), y)
            row["tsne_s"] = round(time.perf_counter() - t0, 1)
        print(row, flush=True)


def variants(images, y, subset):
    """Share of an image's k HOG neighbours in its class: k, then HOG's parameters (k=15)."""
    def share(feats, k=15):
        return share_in_class(image_neighbors(feats[:, :, None, None], k, "pixels"), y)

    print(f"# {machine()}; Fashion-MNIST subset {subset} (random_state=0); HOG at 28x28")
    hog = hog_features(images)
    for k in (5, 10, 15, 30):
        print({"hog": "defaults (7 cells, 9 bins, gamma 0.5)", "k": k, "share": share(hog, k)})
    for kw in ({"bins": 12}, {"bins": 18}, {"cells": 4}, {"cells": 9}, {"cells": 14},
               {"gamma": 1.0}):
        print({"hog": kw, "k": 15, "share": share(hog_features(images, **kw))}, flush=True)
    both = torch.cat([hog, hog_features(images, cells=4)], 1)
    print({"hog": "7 cells and 4 cells joined", "k": 15, "share": share(both)})
    px = images.reshape(len(y), -1).float()
    for w in (0.5, 1.0, 2.0):  # pixels scaled to w times HOG's mean row norm
        joined = torch.cat([hog, px * (w * hog.norm(dim=1).mean() / px.norm(dim=1).mean())], 1)
        print({"hog": f"joined with pixels x{w}", "k": 15, "share": share(joined)}, flush=True)


if __name__ == "__main__":
    main()
