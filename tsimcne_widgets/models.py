"""Backbones and the projection head.

``build_backbone`` turns a name (or a user's module) into an ``nn.Module`` that maps
images ``(B, C, H, W)`` to features ``(B, feature_dim)``. ``TSimCNEModel`` puts input
normalisation, the backbone and the projection head together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pixels import resize_images

__all__ = ["RESNETS", "build_backbone", "ProjectionHead", "TSimCNEModel", "SmallCNN", "FastCNN"]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = ("fast", "small", *RESNETS)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class _ConvFeatures(nn.Module):
    """Conv layers, then global average pooling to ``feature_dim`` features."""

    feature_dim = 512

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.features(x)


class SmallCNN(_ConvFeatures):
    """A compact CNN (about 1.6 M parameters) for tiny images: five 3x3 convs, the last
    one from 256 to 512 channels at a quarter of the input size."""

    def __init__(self, in_channels: int = 3):
        super().__init__(
            *_conv_bn_relu(in_channels, 32),
            *_conv_bn_relu(32, 64),
            *_conv_bn_relu(64, 128, stride=2),
            *_conv_bn_relu(128, 256, stride=2),
            *_conv_bn_relu(256, 512),
        )


class FastCNN(_ConvFeatures):
    """A CNN sized for CPUs and images of up to about 32x32 (0.3 M parameters).

    A stride-2 stem halves the image before any wide layer, the 3x3 convs stay at 64 and
    128 channels, and a 1x1 conv widens to the 512 features at a quarter of the input
    size. At 28x28 this is about 4x fewer multiply-adds than :class:`SmallCNN`, whose
    256-to-512 3x3 conv dominates its cost.
    """

    def __init__(self, in_channels: int = 3):
        super().__init__(
            *_conv_bn_relu(in_channels, 32, stride=2),
            *_conv_bn_relu(32, 64),
            *_conv_bn_relu(64, 128, stride=2),
            *_conv_bn_relu(128, 128),
            *_conv_bn_relu(128, 512, kernel=1),
        )


def _small_image_resnet(name: str, in_channels: int) -> tuple[nn.Module, int]:
    import torchvision  # here: importing it costs about 2 s that 'fast' and 'small' skip

    net = getattr(torchvision.models, name)(weights=None)
    # t-SimCNE's change for small images: a 3x3 stride-1 stem and no max-pool.
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def build_backbone(backbone, in_channels: int, feature_dim: int | None = None):
    """Return ``(module, feature_dim)`` for a backbone name or a user module.

    Parameters
    ----------
    backbone : str or torch.nn.Module
        'fast', 'small', one of the torchvision ResNets ('resnet18', ... 'resnet152', with the
        small-image stem), or a module mapping ``(B, C, H, W)`` to ``(B, feature_dim)``.
    in_channels : int
        Number of image channels; named backbones build their first layer for it.
    feature_dim : int, optional
        Required for a user module unless it has a ``feature_dim`` attribute.
    """
    if isinstance(backbone, nn.Module):
        dim = feature_dim or getattr(backbone, "feature_dim", None)
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(
                "feature_dim must be given as a positive int when backbone is a custom "
                f"nn.Module (the size of its output features), got {dim!r}."
            )
        return backbone, dim
    if backbone == "small":
        return SmallCNN(in_channels), SmallCNN.feature_dim
    if backbone == "fast":
        return FastCNN(in_channels), FastCNN.feature_dim
    if backbone in RESNETS:
        return _small_image_resnet(backbone, in_channels)
    raise ValueError(
        f"backbone must be 'auto', one of {', '.join(repr(b) for b in BACKBONES)} or an "
        "nn.Module, "
        f"got {backbone!r}."
    )


class ProjectionHead(nn.Module):
    """Linear(feature_dim, hidden) -> ReLU -> Linear(hidden, out_dim)."""

    def __init__(self, feature_dim: int, out_dim: int, hidden_dim: int = 1024):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(feature_dim, hidden_dim), nn.ReLU(inplace=True))
        self.last = nn.Linear(hidden_dim, out_dim)

    def replace_last(self, out_dim: int, generator: torch.Generator | None = None):
        """Swap in a new last layer with N(0, 1) weights (t-SimCNE's stage 2)."""
        old = self.last
        new = nn.Linear(old.in_features, out_dim).to(old.weight.device)
        with torch.no_grad():
            w = torch.randn(new.weight.shape, generator=generator, device=new.weight.device)
            new.weight.copy_(w)
            new.bias.zero_()
        self.last = new

    def forward(self, h):
        return self.last(self.hidden(h))


class TSimCNEModel(nn.Module):
    """Resize, normalise, embed with the backbone, project with the head.

    ``input_size`` (height, width), if given, is the resolution the backbone sees: images
    of another size are resized to it (antialiased bilinear) on the way in, so that
    inference takes the images at the size they were given.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, out_dim: int, in_channels: int,
                 input_size: tuple[int, int] | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, in_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, in_channels, 1, 1))
        self.input_size = None if input_size is None else tuple(input_size)
        self.backbone = backbone
        self.head = ProjectionHead(feature_dim, out_dim)

    def at_input_size(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` images resized (on the CPU) to ``input_size``; returned as
        they are without one, or when they have that size already."""
        if self.input_size is None or tuple(images.shape[-2:]) == self.input_size:
            return images
        return resize_images(images.cpu(), self.input_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``h`` of images in [0, 1]."""
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", antialias=True)
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.head.hidden(self.features(x))
        # The last layer runs in float32 even under bf16 autocast: bf16 keeps 8 bits of
        # mantissa, far too coarse for 2D coordinates and for the loss computed on them.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.head.last(hidden.float())
