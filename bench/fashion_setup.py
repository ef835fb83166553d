"""The set-up the Fashion-MNIST benches share: the machine line, the fixed subset, and one
``cpu_recipe()`` run with a time budget. Needs the Fashion-MNIST cache
(``tsimcne-widgets fetch fashion-mnist``)."""

from __future__ import annotations

import time

import torch
from train_throughput import cpu_name

from tsimcne_widgets import TSimCNE, load_fashion_mnist
from tsimcne_widgets.recipes import cpu_recipe


def machine() -> str:
    """The CPU, torch and its thread count, for a result's header line."""
    return f"{cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def load_subset(n: int):
    """The benches' stratified ``n``-image subset (``random_state=0``)."""
    return load_fashion_mnist(subset=n, random_state=0)


def fit_recipe(data, budget: str, seed: int, **overrides):
    """``TSimCNE(**cpu_recipe(time_budget=budget, **overrides))`` fitted on ``data``:
    returns the estimator, its map of ``data`` and the seconds it took."""
    est = TSimCNE(**cpu_recipe(time_budget=budget, **overrides), random_state=seed)
    t0 = time.perf_counter()
    Z = est.fit_transform(data)
    return est, Z, time.perf_counter() - t0
