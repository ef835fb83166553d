"""Probe: can t-SimCNE's 2D stages start from t-SNE of its own features?

Trains stage 1 (128-D) of the digits (or Fashion-MNIST) recipe for ``e1`` epochs, runs
t-SNE on the backbone features, fits the new 2D last layer to that t-SNE map by ridge
regression (``ridge`` times the mean eigenvalue; targets rescaled to std ``scale``),
optionally trains the whole network towards the map with MSE for ``ed`` epochs, then runs
``e3`` epochs of t-SimCNE's 2D fine-tuning (Cauchy InfoNCE, SGD at ``lr3``), printing the
2D kNN accuracy every ``every`` epochs.

    python bench/tsne_readout_probe.py '{"e1": 60, "ed": 0, "e3": 20, "scale": 30,
        "every": 5, "lr3": 0.002, "ridge": 0.001}'
"""

from __future__ import annotations

import json
import sys
import time

import torch

from tsimcne_widgets import TSimCNE, load_digits, load_fashion_mnist
from tsimcne_widgets.augment import Augmentations, augment
from tsimcne_widgets.baselines import embed
from tsimcne_widgets.losses import get_loss
from tsimcne_widgets.metrics import knn_accuracy
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe


def main():
    cfg = json.loads(sys.argv[1])
    seed = cfg.get("seed", 1)
    if cfg.get("data", "digits") == "digits":
        data, rec = load_digits(), digits_recipe(time_budget=None)
    else:
        data = load_fashion_mnist(subset=10000, random_state=0)
        rec = cpu_recipe(time_budget=None)
    t0 = time.perf_counter()
    est = TSimCNE(**{**rec, "total_epochs": (cfg["e1"], 0, 0)}, random_state=seed,
                  verbose=False).fit(data)
    t1 = time.perf_counter()

    def knn(z):
        return round(knn_accuracy(z, data.labels, k=15, random_state=0), 4)

    feats = est.backbone_features(data)
    target = embed(feats, "tsne", random_state=0)
    print(f"stage 1: {cfg['e1']} epochs in {t1 - t0:.0f} s; features {knn(feats)}; "
          f"t-SNE of the features {knn(target)} ({time.perf_counter() - t1:.0f} s)", flush=True)
    model, imgs = est.model_, data.images
    gen = torch.Generator().manual_seed(seed)
    model.head.replace_last(2, gen)
    aug = Augmentations(**rec["augmentations"])
    target = torch.from_numpy(target).float()
    target = (target - target.mean(0)) / target.std() * cfg["scale"]

    # The 2D layer by ridge regression of the target on the clean images' hidden layer.
    model.eval()
    with torch.no_grad():
        x = (imgs.float() / 255).contiguous(memory_format=torch.channels_last)
        hidden = torch.cat([model.head.hidden(model.features(x[i:i + 512]))
                            for i in range(0, len(x), 512)])
        a = torch.cat([hidden, torch.ones(len(hidden), 1)], 1).double()
        gram = a.T @ a
        lam = cfg.get("ridge", 1.0) * gram.trace() / gram.shape[0]
        w = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=torch.float64),
                               a.T @ target.double())
        model.head.last.weight.copy_(w[:-1].T.float())
        model.head.last.bias.copy_(w[-1].float())
    z = est.transform(data)
    print(f"  ridge readout: kNN {knn(z)}, std {z.std():.2f}, weight norm "
          f"{float(w[:-1].norm()):.1f}", flush=True)

    def train(epochs, lr, kind):
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        loss_fn, b, n = get_loss("euclidean"), rec["batch_size"], len(imgs)
        model.train()
        for ep in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(n // b):
                idx = perm[s * b:(s + 1) * b]
                batch = imgs[idx]
                out = model(augment(torch.cat([batch, batch]), aug, gen))
                if kind == "mse":
                    goal = torch.cat([target[idx], target[idx]])
                    loss = ((out - goal) ** 2).sum(1).mean() / cfg["scale"] ** 2
                else:
                    loss = loss_fn(out)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_value_(model.parameters(), 4.0)
                opt.step()
            if (ep + 1) % cfg.get("every", 50) == 0 or ep + 1 == epochs:
                z = est.transform(data)
                print(f"  {kind} epoch {ep + 1}: kNN {knn(z)}, std {z.std():.2f}, loss "
                      f"{loss.item():.3f}, {time.perf_counter() - t0:.0f} s", flush=True)
                model.train()

    train(cfg.get("ed", 0), cfg.get("lr_d", 0.01), "mse")
    train(cfg["e3"], cfg.get("lr3", 0.005), "cauchy")


if __name__ == "__main__":
    main()
