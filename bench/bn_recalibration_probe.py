"""Levers for the 2D map in minutes, one trained model per SPEC, each scored as trained and
with its BatchNorm statistics re-estimated on the un-augmented images.

    python bench/bn_recalibration_probe.py fmnist 4min '{"seed": 1}' '{"weight_decay": 0}'
    python bench/bn_recalibration_probe.py digits 2min '{}'

SPEC: JSON changes to ``cpu_recipe()`` (``digits_recipe()`` for digits), plus ``seed``.
"""

import copy
import json
import sys
import time

import numpy as np
import torch

from tsimcne_widgets import TSimCNE, load_digits, load_fashion_mnist
from tsimcne_widgets.metrics import knn_accuracy
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe

which, budget = sys.argv[1], sys.argv[2]
data = load_digits() if which == "digits" else load_fashion_mnist(subset=10000)


def knn(Z):
    return round(knn_accuracy(Z, data.labels, k=15, random_state=0), 4)



x = data.images.float().div(255).contiguous(memory_format=torch.channels_last)
for spec in sys.argv[3:]:
    over = json.loads(spec)
    seed = over.pop("seed", 0)
    over = {k: tuple(v) if isinstance(v, list) else v for k, v in over.items()}
    rec = (digits_recipe if which == "digits" else cpu_recipe)(time_budget=budget, **over)
    est = TSimCNE(**rec, random_state=seed, verbose=False)
    t = time.perf_counter()
    Z = est.fit_transform(data)
    t = time.perf_counter() - t
    m2 = copy.deepcopy(est.model_)
    for mod in m2.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None
    with torch.no_grad():
        m2.train()
        for c in torch.split(x[torch.randperm(len(x))], 500):
            m2(c)
        m2.eval()
        Zr = torch.cat([m2(c) for c in torch.split(x, 1000)]).numpy()
    print(json.dumps({"spec": spec, "s": round(t), "epochs": [s.epochs for s in est.schedule_],
                      "knn_2d": knn(Z), "knn_2d_recal": knn(Zr),
                      "spread": float(np.std(Z))}), flush=True)
