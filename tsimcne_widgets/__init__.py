"""tsimcne-widgets: train t-SimCNE on image data sets and look at the result in Jupyter."""

from .augment import Augmentations
from .data import ImageData, as_images, load_digits, load_torchvision
from .estimator import TSimCNE

__all__ = [
    "Augmentations",
    "ImageData",
    "TSimCNE",
    "as_images",
    "load_digits",
    "load_torchvision",
]

__version__ = "0.1.0"
