"""Device and mixed-precision choices."""

from __future__ import annotations

import contextlib
import math
import time

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
    """Whether bf16 may be used: True or False as given; 'auto' where the device supports
    bf16 (the estimator then times both precisions, see ``measure_precision``)."""
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


# -- precision by measurement -------------------------------------------------------------
# bf16 is not faster everywhere: some CPUs that report bf16 instructions run ResNet18
# slower in bf16 than in fp32. 'auto' therefore times both, once per process and setting.
PROBE_SECONDS = 2.0
_PROBE_VIEWS = 64
_PRECISION_CACHE: dict[tuple, tuple[bool, dict]] = {}


def measure_precision(step, key, max_views: int, *, timer=time.perf_counter,
                      budget: float = PROBE_SECONDS) -> tuple[bool, dict]:
    """Time forward+backward steps in fp32 and bf16 and return whether bf16 is faster.

    Parameters
    ----------
    step : callable
        ``step(bf16: bool, n_views: int)`` runs one forward and backward pass on
        ``n_views`` images and returns when it is done (synchronised on a GPU).
    key : hashable
        The setting (device, backbone, image shape, batch size); a second call with the
        same key returns the first answer without running anything.
    max_views : int
        Views per step in training; the probe uses at most this many (and at most 64),
        fewer when a step is slow, so that the probe takes about ``budget`` seconds.
    timer : callable, optional
        Clock in seconds (injectable for tests).

    Returns
    -------
    (bool, dict)
        Whether to use bf16, and the timings: ``{"views", "fp32", "bf16"}`` with the
        best seconds per step of each precision.
    """
    if key in _PRECISION_CACHE:
        return _PRECISION_CACHE[key]
    n = max(2, min(int(max_views), _PROBE_VIEWS))
    # The first step of each precision carries one-off costs (kernel selection), so it
    # is a warm-up; its time only sizes the probe.
    t0 = timer()
    step(False, n)
    warm = timer() - t0
    per_step = budget / 8
    if warm > per_step:
        n = max(2, int(n * per_step / warm) // 2 * 2)
    step(True, n)
    best = {False: math.inf, True: math.inf}
    spent = timer() - t0
    rounds = 0
    while rounds < 3 and (rounds == 0 or spent < budget):
        for amp in (False, True):
            t1 = timer()
            step(amp, n)
            best[amp] = min(best[amp], timer() - t1)
        spent = timer() - t0
        rounds += 1
    result = (best[True] < best[False], {"views": n, "fp32": best[False], "bf16": best[True]})
    _PRECISION_CACHE[key] = result
    return result
