"""t-SimCNE on a Fashion-MNIST subset (or the digits) with a time budget, beside pixel t-SNE.

Each configuration is a JSON object of ``TSimCNE`` parameters (``augmentations`` as a dict)
plus an optional ``"name"`` and ``"resize"`` (a side length: train and embed downsampled
images). Every one runs for every seed, and pixel t-SNE (openTSNE defaults on PCA-50 of the
pixels) runs once on the same images as the anchor. Prints one line per run and a summary
per configuration (mean and spread over the seeds), and appends them to ``--out``. Needs
the Fashion-MNIST cache (``tsimcne-widgets fetch fashion-mnist``).

    python bench/fashion_recipe.py --subset 10000 --seeds 0,1,2 \\
        --config '{"name": "cpu recipe", "time_budget": "10min"}'
    python bench/fashion_recipe.py --data digits --tsne-features --config '{}'

Protocol: ``metrics.knn_accuracy(Z, labels, k=15, random_state=0)`` (a stratified 10 %
hold-out). A configuration without ``backbone``/``total_epochs``/... gets the package's
CPU recipe for those (``tsimcne_widgets.recipes.cpu_recipe``; ``digits_recipe`` with
``--data digits``). ``--tsne-features`` also scores t-SNE on each run's backbone features.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import probe_patches
from fashion_setup import load_subset, machine
from map_scores import knn, score

from tsimcne_widgets import TSimCNE, as_images, load_digits
from tsimcne_widgets.baselines import embed, pixel_features
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe


def _tuples(params: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def run_config(config: dict, data, seed: int, recipe: dict, tsne_features: bool) -> dict:
    params = dict(config)
    name = params.pop("name", json.dumps(config))
    aug = params.pop("augmentations", None)
    resize = params.pop("resize", None)  # train and embed at a lower resolution
    # Bench-only probes of ideas not adopted (probe_patches.py): a negative bank, and
    # neighbours from the run's own features, Adam, clean anchors.
    probe_patches.install_bank(params.pop("_bank", 0))
    probe_patches.install_feature_neighbors(params.pop("_feat_nbr", None), data.labels)
    probe_patches.install_adam(params.pop("_adam_stages", ()))
    probe_patches.install_clean_anchors(params.pop("_clean_stages", ()))
    probe_patches.install_head_norm(params.pop("_head_norm", False))
    probe_patches.install_pixel_skip(params.pop("_pixel_skip", 0.0))
    if params.pop("_hog_nbr", False):  # the screen's spelling, before neighbor_space existed
        params["neighbor_space"] = "hog"
    if resize is not None:
        data = as_images(data, resize=resize)
    recipe = dict(recipe)
    if aug is not None:
        recipe["augmentations"] = {**recipe["augmentations"], **aug}
    params = {**recipe, **_tuples(params)}
    params["augmentations"] = _tuples(params["augmentations"])
    est = TSimCNE(**params, random_state=seed)
    t0 = time.perf_counter()
    Z = est.fit_transform(data)
    row = {"name": name, "seed": seed, **score(est, data, time.perf_counter() - t0, Z),
           "map_scale": round(float(np.std(Z)), 2)}
    if tsne_features:
        T = embed(est.backbone_features(data), "tsne", random_state=0)
        row["knn_tsne_features"] = knn(T, data.labels)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    p.add_argument("--subset", type=int, default=10000, help="Fashion-MNIST images")
    p.add_argument("--tsne-features", action="store_true")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--config", action="append", required=True, help="JSON; repeat for more")
    p.add_argument("--no-anchor", action="store_true", help="skip pixel t-SNE")
    p.add_argument("--out", default=None, help="append the lines to this file")
    args = p.parse_args()
    if args.data == "digits":
        data, recipe, what = load_digits(), digits_recipe(), "digits (1797)"
    else:
        data, recipe = load_subset(args.subset), cpu_recipe()
        what = f"Fashion-MNIST subset {args.subset} (random_state=0)"
    lines: list[str] = []

    def say(line):
        print(line, flush=True)
        lines.append(line)

    say(f"# {machine()}; {what}")
    if not args.no_anchor:
        t0 = time.perf_counter()
        Z = embed(pixel_features(data), "tsne", random_state=0)
        say(json.dumps({"name": "anchor: t-SNE on pixels (PCA-50)",
                        "seconds": round(time.perf_counter() - t0, 1),
                        "knn_2d": knn(Z, data.labels)}))
    seeds = [int(s) for s in args.seeds.split(",")]
    for text in args.config:
        config = json.loads(text)
        rows = [run_config(config, data, seed, recipe, args.tsne_features) for seed in seeds]
        for row in rows:
            say(json.dumps(row))
        acc = np.array([r["knn_2d"] for r in rows])
        feat = np.array([r["knn_features"] for r in rows])
        say(f"summary {rows[0]['name']!r}: 2D kNN {acc.mean():.4f} ± {acc.std():.4f} "
            f"(min {acc.min():.4f}, max {acc.max():.4f}); features {feat.mean():.4f} ± "
            f"{feat.std():.4f}; {np.mean([r['seconds'] for r in rows]):.0f} s; "
            f"{len(rows)} seed(s)")
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
