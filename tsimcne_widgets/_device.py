"""Device and mixed-precision choices."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(device) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; anything else must name a usable device."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, "
            f"got {device!r}."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here.")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device={device!r} was requested but MPS is not available here.")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """True where bf16 autocast is fast: CUDA with bf16, or a CPU with bf16 instructions."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(mixed_precision, device: torch.device) -> bool:
    """Decide whether to autocast to bf16: 'auto', True or False."""
    if mixed_precision == "auto":
        return bf16_supported(device)
    if isinstance(mixed_precision, bool):
        if mixed_precision and device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"mixed_precision=True is supported on CPU and CUDA, not on {device.type!r}."
            )
        return mixed_precision
    raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}.")


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast context for ``device`` (a no-op context when disabled)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
