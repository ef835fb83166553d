"""Does ``torch_compile`` pay on this machine? Full ``fit`` steps (augmentations, loss,
fused optimiser) eager and compiled, side by side, per backbone, with the compile time.

    python bench/compile_step.py [--cases fast,small,resnet18] [--epochs 4] [--backend inductor]
    python bench/compile_step.py --device cuda --precision auto --cases resnet18 \
        --batch-size 512 --images 32768        # on a GPU

One stage of ``--epochs`` epochs on random uint8 images; the first epoch holds the
compiling step, so views/s is taken over the later epochs (``history_`` seconds), and
"pays after" is the training time after which the compiled run has caught up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_name  # noqa: E402

from tsimcne_widgets import Augmentations, TSimCNE  # noqa: E402

# backbone, channels, image size, batch, images
CASES = {"fast": ("fast", 1, 28, 256, 2048), "small": ("small", 1, 28, 256, 1024),
         "resnet18": ("resnet18", 3, 32, 128, 512)}


def shape_of(case, args):
    backbone, channels, size, batch, n = CASES[case]
    return backbone, channels, size, args.batch_size or batch, args.images or n


def run(case, args, compile_arg):
    backbone, channels, size, batch, n = shape_of(case, args)
    X = np.random.default_rng(0).integers(0, 256, (n, channels, size, size), np.uint8)
    precision = {"fp32": False, "bf16": True, "auto": "auto"}[args.precision]
    est = TSimCNE(backbone=backbone, batch_size=batch, total_epochs=(args.epochs,),
                  warmup_epochs=0, device=args.device, mixed_precision=precision,
                  n_threads=args.threads, augmentations=Augmentations(), random_state=0,
                  verbose=False, torch_compile=compile_arg).fit(X)
    later = est.history_[1:]
    steps = n // batch
    rate = 2 * batch * steps * len(later) / sum(h["seconds"] for h in later)
    return rate, est.compile_seconds_, est.precision_


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="fast,small,resnet18")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--backend", default="inductor")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32")
    ap.add_argument("--batch-size", type=int, default=0, help="default: the case's")
    ap.add_argument("--images", type=int, default=0, help="default: the case's")
    args = ap.parse_args()
    where = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
             else f"{cpu_name()}, {args.threads} threads")
    print(f"# {where}; torch {torch.__version__}, backend {args.backend}", flush=True)
    for case in args.cases.split(","):
        eager, _, precision = run(case, args, False)
        compiled, secs, _ = run(case, args, {"backend": args.backend})
        # Compiled training catches up once the time saved per view pays the compile time.
        saved = 1 / eager - 1 / compiled
        pays = secs / saved / eager if saved > 0 else float("inf")
        print(json.dumps({"case": case, "shape_batch_images": shape_of(case, args)[1:],
                          "precision": precision, "eager_views_s": round(eager, 1),
                          "compiled_views_s": round(compiled, 1),
                          "speedup": round(compiled / eager, 3),
                          "compile_s": round(secs, 1),
                          "pays_after_s_of_training": round(pays, 0)}), flush=True)


if __name__ == "__main__":
    main()
