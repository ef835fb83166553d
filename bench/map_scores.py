"""The quality goals' protocol for a trained estimator, shared by the Fashion-MNIST benches:
``metrics.knn_accuracy(Z, labels, k=15, random_state=0)`` of the 2D map and of the backbone
features, with the epochs the run got."""

from __future__ import annotations

from tsimcne_widgets.metrics import knn_accuracy


def knn(Z, labels) -> float:
    """kNN accuracy (k=15, the stratified 10 % hold-out of ``random_state=0``), 4 places."""
    return round(knn_accuracy(Z, labels, k=15, random_state=0), 4)


def score(est, data, seconds: float, Z=None) -> dict:
    """``seconds``, ``epochs`` per stage, ``precision`` (and layout), ``knn_2d`` (of ``Z``,
    default ``est.transform``) and ``knn_features`` for ``est`` trained on ``data``."""
    Z = est.transform(data) if Z is None else Z
    return {
        "seconds": round(seconds, 1), "epochs": [st.epochs for st in est.schedule_],
        "precision": f"{est.precision_}/{est.memory_format_}",
        "knn_2d": knn(Z, data.labels),
        "knn_features": knn(est.backbone_features(data), data.labels),
    }
