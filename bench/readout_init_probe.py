"""Probe: the 2D readout initialised from a PCA of the head's hidden layer, not N(0, 1).

    python bench/readout_init_probe.py fmnist 4min pca 0      # or: digits 2min pca 0
    python bench/readout_init_probe.py fmnist 4min random 0   # the package's own init

Patches ``Trainer._configure_stage`` for the experiment only; the package keeps N(0, 1).
"""
import json
import sys
import time

import torch

from tsimcne_widgets import TSimCNE, load_digits, load_fashion_mnist
from tsimcne_widgets.metrics import knn_accuracy
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe
from tsimcne_widgets.trainer import Trainer

which, budget, mode, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
target_std = float(sys.argv[5]) if len(sys.argv) > 5 else None
orig = Trainer._configure_stage


def patched(self):
    orig(self)
    if self.stage == 1 and mode == "pca":
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(self.images), generator=g)[:3000]
        x = self.images[idx].float().div(255).contiguous(memory_format=torch.channels_last)
        m = self.model
        m.eval()
        with torch.no_grad():
            Hh = torch.cat([m.head.hidden(m.features(c)) for c in torch.split(x, 500)])
            mu = Hh.mean(0)
            _, _, V = torch.pca_lowrank(Hh - mu, q=2, center=False)
            W = V[:, :2].T.contiguous()
            last = m.head.last
            out_rand = (Hh @ last.weight.T + last.bias).std(0).mean()
            proj = (Hh - mu) @ W.T
            want = out_rand if target_std is None else target_std
            scale = want / proj.std(0).mean()
            last.weight.copy_(W * scale)
            last.bias.copy_(-(mu @ W.T) * scale)
            print(f"  pca init: random-init output std {out_rand:.2f}, now {want:.2f}", flush=True)


Trainer._configure_stage = patched
data = load_digits() if which == "digits" else load_fashion_mnist(subset=10000)
rec = (digits_recipe if which == "digits" else cpu_recipe)(time_budget=budget)
est = TSimCNE(**rec, random_state=seed, verbose=False)
t = time.perf_counter()
Z = est.fit_transform(data)
t = time.perf_counter() - t
print(json.dumps({"data": which, "budget": budget, "mode": mode, "target_std": target_std,
                  "seed": seed,
                  "s": round(t), "epochs": [s.epochs for s in est.schedule_],
                  "knn_2d": round(knn_accuracy(Z, data.labels, k=15, random_state=0), 4)}),
      flush=True)
