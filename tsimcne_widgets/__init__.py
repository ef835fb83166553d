"""tsimcne-widgets: train t-SimCNE on image data sets and look at the result in Jupyter."""

from .augment import Augmentations
from .data import ImageData, as_images, load_digits, load_torchvision
from .estimator import TSimCNE
from .fashion_mnist import load_fashion_mnist

__all__ = [
    "Augmentations",
    "EmbeddingScatter",
    "Explorer",
    "ImageData",
    "SelectionGallery",
    "TSimCNE",
    "TrainingMonitor",
    "TrainingRun",
    "as_images",
    "load_digits",
    "load_fashion_mnist",
    "load_torchvision",
]

__version__ = "0.1.0"

# Widgets load lazily, so that the training core never imports Jupyter machinery.
_LAZY = {
    "EmbeddingScatter": "scatter",
    "Explorer": "explorer",
    "SelectionGallery": "gallery",
    "TrainingMonitor": "monitor",
    "TrainingRun": "run",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
