"""How the 2D map's kNN accuracy grows during one long time-budget run (where it plateaus).

Trains ``cpu_recipe()`` (overridable with ``--config``) on a Fashion-MNIST subset as a
background run with a snapshot at every epoch end, then scores every 2D snapshot with the
protocol of the quality goals and prints one line per epoch: stage, epoch, minutes of
run time, 2D kNN. Snapshots cost run time, so the final line also gives the epochs run.

    python bench/fashion_curve.py --subset 10000 --budget 30min --seed 0 [--save out.npz]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from fashion_setup import load_subset, machine
from map_scores import knn, score

from tsimcne_widgets import TSimCNE, as_images
from tsimcne_widgets.recipes import cpu_recipe


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--budget", default="30min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resize", type=int, default=None)
    p.add_argument("--config", default="{}", help="JSON overrides of cpu_recipe()")
    p.add_argument("--save", default=None,
                   help="write the final map, backbone features and labels to this .npz")
    args = p.parse_args()
    data = load_subset(args.subset)
    if args.resize:
        data = as_images(data, resize=args.resize)
    params = cpu_recipe(time_budget=args.budget, **json.loads(args.config))
    print(f"# {machine()}; Fashion-MNIST subset {args.subset}, "
          f"{tuple(data.image_shape)}; budget {args.budget}; seed {args.seed}; "
          f"overrides {args.config}", flush=True)
    est = TSimCNE(**params, random_state=args.seed, verbose=False)
    t0 = time.time()
    run = est.start(data, snapshot_every="epoch", max_snapshots=10_000)
    run.wait()
    seconds = time.time() - t0
    for s in run.snapshots:
        if s.kind != "embedding":
            continue
        acc = knn(s.xy, data.labels)
        print(f"stage {s.stage} epoch {s.epoch:3d}  {(s.time - t0) / 60:5.1f} min  "
              f"2D kNN {acc:.3f}", flush=True)
    Z = est.transform(data)
    print(json.dumps(score(est, data, seconds, Z=Z)), flush=True)
    if args.save:
        np.savez(args.save, map=Z, features=est.backbone_features(data), labels=data.labels)


if __name__ == "__main__":
    main()
