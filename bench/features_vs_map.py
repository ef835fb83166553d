"""Is t-SimCNE's 2D map limited by its own features? One ``cpu_recipe()`` run on the
Fashion-MNIST subset, then: the map's kNN accuracy, t-SNE of the same run's backbone
features, and the map and the features averaged over horizontally flipped images (a
test-time augmentation).

    python bench/features_vs_map.py [--budget 4min] [--subset 10000] [--seed 0]

Protocol as in ``fashion_recipe.py`` (``metrics.knn_accuracy``, k=15, a stratified 10 %
hold-out). Needs the Fashion-MNIST cache (``tsimcne-widgets fetch fashion-mnist``).
"""

from __future__ import annotations

import argparse

import numpy as np
from fashion_setup import fit_recipe, load_subset, machine
from map_scores import knn

from tsimcne_widgets import as_images
from tsimcne_widgets.baselines import embed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="4min")
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data = load_subset(args.subset)
    print(f"# {machine()}; Fashion-MNIST subset {args.subset}; "
          f"cpu_recipe(time_budget={args.budget!r}), seed {args.seed}")
    est, Z, seconds = fit_recipe(data, args.budget, args.seed)
    print(f"trained {seconds:.0f} s, epochs "
          f"{[st.epochs for st in est.schedule_]}, {est.precision_}/{est.memory_format_}")
    flipped = as_images(np.ascontiguousarray(np.asarray(data.images)[..., ::-1]), data.labels)
    Zf = est.transform(flipped)
    F, Ff = est.backbone_features(data), est.backbone_features(flipped)
    y = data.labels
    print(f"2D map {knn(Z, y)}; of the flipped images {knn(Zf, y)}; "
          f"averaged over both {knn((Z + Zf) / 2, y)}")
    print(f"features {knn(F, y)}; averaged over both {knn((F + Ff) / 2, y)}")
    print(f"t-SNE of the features (openTSNE, PCA-50) {knn(embed(F, 'tsne', random_state=0), y)}")


if __name__ == "__main__":
    main()
