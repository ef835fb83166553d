"""One registration style for every ``on_*`` method: validate, register once, hand back."""

from __future__ import annotations

import contextlib
from collections.abc import Callable


def register(callbacks: list, callback: Callable, *, remove: bool = False,
             lock=None) -> Callable:
    """Add ``callback`` to ``callbacks`` (or take it out with ``remove=True``).

    As ipywidgets' ``on_click(callback, remove=True)``: a callback is registered at most
    once, and removing one that is not registered does nothing.

    Parameters
    ----------
    callbacks : list
        The registry to change.
    callback : callable
        Must be callable, else ``TypeError``.
    remove : bool, default=False
        Unregister instead.
    lock : context manager, optional
        Held while the registry changes (registries read from other threads).

    Returns
    -------
    callable
        ``callback``, so that a caller can keep it and remove it later.
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    with lock if lock is not None else contextlib.nullcontext():
        if remove:
            if callback in callbacks:
                callbacks.remove(callback)
        elif callback not in callbacks:
            callbacks.append(callback)
    return callback
