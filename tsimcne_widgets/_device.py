"""Device, mixed-precision and memory-layout choices."""

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
    bf16 (the estimator then times both precisions, see ``measure_speed``)."""
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


def memory_format(channels_last: bool) -> torch.memory_format:
    """The layout of images and convolution weights: channels_last or contiguous."""
    return torch.channels_last if channels_last else torch.contiguous_format


# -- precision and layout by measurement --------------------------------------------------
# bf16 is not faster everywhere: some CPUs that report bf16 instructions run ResNet18
# slower in bf16 than in fp32. Nor is channels_last: on an Intel Xeon with AMX (family 6,
# model 207) the small CNN at 8x8 ran 0.83x in fp32 with it, while ResNet18 ran 1.22x.
# 'auto' therefore times the candidates, once per process and setting.
PROBE_SECONDS = 2.0
# Settings within this share of the fastest count as tied, and ties go to the earlier
# candidate: the layouts often differ by less than the noise of a 2 s probe.
PROBE_MARGIN = 0.05
_PROBE_VIEWS = 64
_PROBE_CACHE: dict[tuple, tuple[tuple, dict]] = {}


def setting_name(bf16: bool, channels_last: bool) -> str:
    """'bf16/channels_last', 'fp32/contiguous', ...: the keys of the probe's timings."""
    return f"{'bf16' if bf16 else 'fp32'}/{'channels_last' if channels_last else 'contiguous'}"


def measure_speed(step, key, max_views: int, candidates, *, timer=time.perf_counter,
                  budget: float = PROBE_SECONDS) -> tuple[tuple[bool, bool], dict]:
    """Time forward+backward steps in each (precision, layout) candidate; return the
    fastest.

    Parameters
    ----------
    step : callable
        ``step(bf16: bool, channels_last: bool, n_views: int)`` runs one forward and
        backward pass on ``n_views`` images and returns when it is done (synchronised on a
        GPU).
    key : hashable
        The setting (device, backbone, image shape, batch size); a second call with the
        same key returns the first answer without running anything.
    max_views : int
        Views per step in training. The first step uses at most 64; its time sizes the
        rest (at most ``max_views``) so that the probe takes about ``budget`` seconds.
    candidates : sequence of (bool, bool)
        The (bf16, channels_last) pairs to time, in order of preference: the first one
        within ``PROBE_MARGIN`` (5 %) of the fastest is chosen.
    timer : callable, optional
        Clock in seconds (injectable for tests).

    Returns
    -------
    ((bool, bool), dict)
        The fastest (bf16, channels_last), and the timings: ``"views"`` (views per probe
        step) and, per candidate under :func:`setting_name`, its best seconds per step. A
        candidate whose step raised has no timing; when every one raised, the first is
        returned.
    """
    if key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    candidates = [tuple(c) for c in candidates]
    n = max(2, min(int(max_views), _PROBE_VIEWS))
    per_step = budget / (4 * len(candidates))
    t0 = timer()
    # The first step of each candidate carries one-off costs (kernel selection), so it is
    # a warm-up; the first one's time only sizes the probe. A setting whose step raises
    # (say, an op of a custom backbone without bf16 support) drops out.
    best: dict[tuple, float] = {}  # the settings that run, in order, and their times
    for c in candidates:
        t1 = timer()
        if not _runs(step, c, n):
            continue
        if not best:
            # Sized to the budget: down for a slow model, and up to the training batch
            # for a fast one, whose speed at 64 views says little about it at 512.
            took = max(timer() - t1, 1e-9)
            n = max(2, min(int(max_views), int(n * per_step / took))) // 2 * 2
        best[c] = math.inf
    spent = timer() - t0
    rounds = 0
    # Two rounds at least: the first at a new size may still pay one-off costs.
    while best and (rounds < 2 or (rounds < 3 and spent < budget)):
        for c in list(best):
            t1 = timer()
            if _runs(step, c, n):
                best[c] = min(best[c], timer() - t1)
            else:
                del best[c]
        spent = timer() - t0
        rounds += 1
    # None runs: keep the first, and let training raise the error where it belongs.
    choice = candidates[0]
    if best:
        fastest = min(best.values())
        choice = next(c for c, t in best.items() if t <= fastest * (1 + PROBE_MARGIN))
    timings = {"views": n, **{setting_name(*c): t for c, t in best.items()}}
    _PROBE_CACHE[key] = (choice, timings)
    return choice, timings


def _runs(step, setting, n: int) -> bool:
    try:
        step(*setting, n)
    except Exception:  # noqa: BLE001 - any failure rules the setting out
        return False
    return True
