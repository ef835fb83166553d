"""Probe: can a 2D head trained on *cached* backbone features reach pixel t-SNE?

Trains ``cpu_recipe()`` with a time budget (or loads a saved run), freezes its backbone,
caches the features of the clean images, and trains a fresh MLP head as a parametric
neighbour embedding (Cauchy InfoNCE over in-batch negatives) of a kNN graph for a few
seconds of CPU. Prints the 2D kNN accuracy over time for each graph:

    python bench/cached_head_probe.py --budget 4min --save /tmp/probe.pt
    python bench/cached_head_probe.py --load /tmp/probe.pt --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import openTSNE
import torch
import torch.nn.functional as F
from fashion_setup import fit_recipe, load_subset, machine
from map_scores import knn
from neighbor_sources import pca, unit

from tsimcne_widgets import TSimCNE
from tsimcne_widgets.baselines import embed
from tsimcne_widgets.losses import cauchy_infonce
from tsimcne_widgets.neighbors import pixel_neighbors


def neighbours(v: np.ndarray, k: int) -> torch.Tensor:
    return pixel_neighbors(torch.as_tensor(v, dtype=torch.float32)[:, :, None, None], k)


def perplexity_neighbours(v: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's ``k`` largest t-SNE affinities (perplexity ``k // 3``): indices, weights."""
    P = openTSNE.affinity.PerplexityBasedNN(v, k // 3, random_state=0).P.tocsr()
    nb = np.zeros((P.shape[0], k), dtype=np.int64)
    w = np.zeros((P.shape[0], k), dtype=np.float32)
    for r in range(P.shape[0]):
        a, b = P.indptr[r], P.indptr[r + 1]
        top = np.argsort(-P.data[a:b])[:k]
        nb[r, :len(top)] = P.indices[a:b][top]
        w[r, :len(top)] = P.data[a:b][top]
    return torch.as_tensor(nb), torch.as_tensor(w)


def uniform_tsne(v: np.ndarray, k: int) -> np.ndarray:
    """t-SNE of the uniform ``k``-neighbour graph of ``v`` (PCA start, 250 + 500 steps)."""
    aff = openTSNE.affinity.Uniform(v, k_neighbors=k, random_state=0)
    E = openTSNE.TSNEEmbedding(openTSNE.initialization.pca(v, random_state=0), aff,
                               random_state=0)
    return np.asarray(E.optimize(250, exaggeration=12, momentum=0.5)
                      .optimize(500, momentum=0.8))


def anchored_infonce(z: torch.Tensor, anchors: torch.Tensor, partners: torch.Tensor,
                     dof: float, exag: float = 1.0) -> torch.Tensor:
    """Cauchy InfoNCE of the points ``anchors`` of ``z`` against every other point of ``z``,
    with the attraction to each one's partner (an index into ``z``) weighted by ``exag``."""
    z = z.float()
    a = z[anchors]
    d2 = ((a * a).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * (a @ z.T)).clamp_min(0.0)
    logits = -dof * torch.log1p(d2 / dof)
    rows = torch.arange(len(anchors))
    logits[rows, anchors] = float("-inf")
    return (torch.logsumexp(logits, 1) - exag * logits[rows, partners]).mean()


def train_head(x: torch.Tensor, nbrs: torch.Tensor, labels, *, seconds: float, dof: float,
               batch: int, lr: float, hidden: int, seed: int, report: float,
               exag: float = 1.0, exag_steps: int | None = None, wd: float = 0.0,
               weights=None, init=None, target=None, anneal: bool = False,
               all_negatives: bool = False, act: str = "relu", norm: bool = False) -> list:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if x.dtype == torch.long:  # a free table of 2D points: non-parametric
        head = torch.nn.Embedding(len(x), 2)
        with torch.no_grad():
            if init is None:
                head.weight.normal_(0, 1e-2, generator=g)
            else:
                head.weight.copy_(torch.as_tensor(init, dtype=torch.float32))
    else:
        def block(d_in):  # act: "relu" or "gelu"; norm: a LayerNorm before it
            layers = [torch.nn.Linear(d_in, hidden)]
            layers += [torch.nn.LayerNorm(hidden)] if norm else []
            return layers + [torch.nn.GELU() if act == "gelu" else torch.nn.ReLU()]
        head = torch.nn.Sequential(*block(x.shape[1]), *block(hidden),
                                   torch.nn.Linear(hidden, 2))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=wd)
    n, k = nbrs.shape
    out, t0, next_report, steps = [], time.perf_counter(), report, 0
    if target is not None:  # regression onto a given 2D map (distillation), not InfoNCE
        y = torch.as_tensor(target, dtype=torch.float32)
        y = (y - y.mean(0)) / y.std()
    metric = "loss" if target is None else "mse"
    while True:
        i = torch.randint(n, (batch,), generator=g)
        if target is not None:
            loss = F.mse_loss(head(x[i]), y[i])
        else:
            col = (torch.randint(k, (batch,), generator=g) if weights is None
                   else torch.multinomial(weights[i], 1, generator=g)[:, 0])
            if all_negatives:  # every point is a negative, as in t-SNE's normalisation
                loss = anchored_infonce(head(x), i, nbrs[i, col], dof)
            else:
                z = head(torch.cat([x[i], x[nbrs[i, col]]]))
                # exag_steps: early exaggeration, as in t-SNE (attraction weighted up at first)
                e = exag if exag_steps is None or steps < exag_steps else 1.0
                both = torch.arange(len(z))  # each view's partner is the other view
                loss = (cauchy_infonce(z, dof=dof) if e == 1
                        else anchored_infonce(z, both, (both + batch) % len(z), dof, e))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        el = time.perf_counter() - t0
        if anneal:  # cosine decay of the rate to 0 over the probe's seconds
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + np.cos(np.pi * min(el / seconds, 1.0)))
        opt.step()
        steps += 1
        if el >= next_report:
            with torch.no_grad():
                Z = head(x).numpy()
            row = {"s": round(el), "steps": steps,
                   metric: round(float(loss.detach()), 3 if target is None else 4),
                   "knn": knn(Z, labels), "scale": round(float(Z.std()), 2)}
            if x.dtype != torch.long:  # hidden units silent on every point (ReLU only)
                with torch.no_grad():
                    h = head[:-1](x)
                row["dead"] = round(float((h.amax(0) <= 0).float().mean()), 3)
            out.append(row)
            next_report += report
            if el >= seconds:
                return out

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--budget", default="4min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overrides", default="{}", help="JSON cpu_recipe() overrides")
    p.add_argument("--save")
    p.add_argument("--load")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--report", type=float, default=20)
    p.add_argument("--graphs", default="features,pixels,joined")
    p.add_argument("--dof", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--k", type=int, default=15)
    p.add_argument("--input", default="features",
                   help="features, pixels, features+pixels or free (a table of 2D points)")
    p.add_argument("--variants", help="a JSON list of dicts of train_head keywords")
    args = p.parse_args()
    data = load_subset(args.subset)
    print(f"# {machine()}; Fashion-MNIST subset {args.subset}", flush=True)
    if args.load and os.path.exists(args.load):
        est = TSimCNE.load(args.load)
    else:
        over = {k: tuple(v) if isinstance(v, list) else v
                for k, v in json.loads(args.overrides).items()}
        est, Z, seconds = fit_recipe(data, args.budget, args.seed, **over)
        print(json.dumps({"map": knn(Z, data.labels), "seconds": round(seconds),
                          "epochs": [st.epochs for st in est.schedule_]}), flush=True)
        if args.save:
            est.save(args.save)
    X = torch.as_tensor(np.asarray(data.images)).float()
    X = X.reshape(len(X), -1, *X.shape[-2:])
    x14 = F.interpolate(X, size=(14, 14), mode="bilinear", antialias=True)
    feats = est.backbone_features(data)
    print(json.dumps({"features": knn(feats, data.labels)}), flush=True)
    spaces = {"pixels": pca(x14.flatten(1).numpy()), "features": pca(feats)}
    pixels = unit(spaces["pixels"])
    spaces["joined"] = np.hstack([pixels, 0.5 * unit(spaces["features"])])
    centred = unit(feats - feats.mean(0))
    inputs = {"features": centred, "pixels": pixels,
              "features+pixels": np.hstack([centred, pixels])}
    x = (torch.arange(len(feats)) if args.input == "free"
         else torch.as_tensor(inputs[args.input], dtype=torch.float32))
    variants = json.loads(args.variants) if args.variants else [{}]
    for graph in args.graphs.split(","):
        for v in variants:
            o = {"dof": args.dof, "batch": args.batch, "lr": args.lr, "hidden": args.hidden,
                 "k": args.k, **v}
            k = o.pop("k")
            weights = None
            if o.pop("distill", None):  # regress onto t-SNE (perplexity 30) of the graph's space
                o["target"] = embed(spaces[graph], "tsne", random_state=0)
                print(json.dumps({"distill_target_knn": knn(o["target"], data.labels)}),
                      flush=True)
            if o.pop("tsne_init", None):  # start the free table at t-SNE of the same graph
                o["init"] = uniform_tsne(spaces[graph], k)
                print(json.dumps({"tsne_init_knn": knn(o["init"], data.labels)}), flush=True)
            if o.pop("perplexity", None):
                nbrs, weights = perplexity_neighbours(spaces[graph], k)
            else:
                nbrs = neighbours(spaces[graph], k)
            rows = train_head(x, nbrs, data.labels, seconds=args.seconds, seed=args.seed,
                              report=args.report, weights=weights, **o)
            o.pop("init", None)
            o.pop("target", None)
            print(json.dumps({"graph": graph, "input": args.input, **o, "k": k, **v,
                              "curve": rows}), flush=True)


if __name__ == "__main__":
    main()
