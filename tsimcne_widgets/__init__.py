"""tsimcne-widgets: train t-SimCNE on image data sets and look at the result in Jupyter."""

from .augment import Augmentations
from .data import ImageData, as_images, load_digits, load_torchvision
from .estimator import TSimCNE
from .fashion_mnist import load_fashion_mnist
from .snapshots import Snapshot

# The one place the version is written: pyproject.toml reads it from here (hatch).
__version__ = "0.1.0"

__all__ = [
    "Augmentations",
    "EmbeddingScatter",
    "Explorer",
    "ImageData",
    "MethodComparison",
    "Progress",
    "SelectionGallery",
    "Snapshot",
    "TSimCNE",
    "TrainingMonitor",
    "TrainingRun",
    "WatchedRun",
    "as_images",
    "load_digits",
    "load_fashion_mnist",
    "load_torchvision",
]

# Widgets and the run engine load on first use, so that `import tsimcne_widgets` (and the
# training core) never imports ipywidgets, anywidget or bokeh: tests/test_imports.py.
_LAZY = {
    "EmbeddingScatter": "scatter",
    "Explorer": "explorer",
    "MethodComparison": "comparison",
    "Progress": "progress",
    "SelectionGallery": "gallery",
    "TrainingMonitor": "monitor",
    "TrainingRun": "run",
    "WatchedRun": "watch",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    # Lazy names are not in globals() until first use; list them anyway (tab completion).
    return sorted(set(globals()) | set(__all__))
