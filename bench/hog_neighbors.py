"""Neighbours in pixel space against neighbours in HOG space, on the Fashion-MNIST subset.

For each space: how many of an image's 15 nearest neighbours (Euclidean, PCA-50: the
search ``neighbor_positives`` runs) share its class, kNN accuracy of the space itself, and
the kNN accuracy of openTSNE's map of it. The first says how good the positive pairs of
``neighbor_space`` are; the last is the baseline a HOG-paired t-SimCNE map should be read
against, beside pixel t-SNE.

    python bench/hog_neighbors.py --subset 10000
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--no-tsne", action="store_true")
    args = p.parse_args()
    data = load_subset(args.subset)
    y = np.asarray(data.labels)
    images = torch.as_tensor(np.asarray(data.images))
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
        nbrs = image_neighbors(imgs, 15, space).numpy()
        row = {"space": name, "search_s": round(time.perf_counter() - t0, 1),
               "share_of_15_neighbours_in_class": round(float((y[nbrs] == y[:, None]).mean()), 4),
               "knn_space": knn(feats.numpy(), y)}
        if not args.no_tsne:
            t0 = time.perf_counter()
            row["knn_tsne"] = knn(embed(feats.numpy(), "tsne", random_state=0), y)
            row["tsne_s"] = round(time.perf_counter() - t0, 1)
        print(row, flush=True)


if __name__ == "__main__":
    main()
