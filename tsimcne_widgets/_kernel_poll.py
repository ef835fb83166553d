"""Keep widgets live while a cell blocks: handle comm messages inside ``wait`` calls.

A cell that blocks (``run.wait()``) keeps the Jupyter kernel busy, so that the widget
messages of button clicks and selections queue up unprocessed until the cell ends. While it
waits, :func:`wait_event` takes the queued shell messages itself: comm messages (widget
updates) are handled at once, every other message (the next cells of a *Run All*, completion
requests, ...) is kept and handed back to the kernel, in order, when the wait ends.

- ipykernel 7: messages for the main shell arrive on an inproc socket from the kernel's
  shell-channel thread; this module reads it on the main thread (the thread that owns it)
  and calls the kernel's comm handlers directly, as ipykernel itself does for comm
  messages while an async cell runs (``Kernel.shell_main``).
- ipykernel 6: ``jupyter-ui-poll`` (optional) does the same through
  ``Kernel.do_one_iteration``.

Outside a kernel, off the main thread, or nested in another wait, nothing is polled.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator

from ._jupyter import jupyter_kernel

__all__ = ["wait_event"]

_COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
_POLL_INTERVAL = 0.1  # seconds between polls: clicks feel immediate
_MESSAGES_PER_POLL = 10
_active = threading.local()


def wait_event(event: threading.Event, timeout: float | None = None,
               interval: float = _POLL_INTERVAL) -> bool:
    """Block until ``event`` is set or ``timeout`` seconds pass; True if it was set.

    Waits in short steps, so that a KeyboardInterrupt is raised promptly, and inside a
    Jupyter kernel handles widget messages between the steps.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    with kernel_poller() as poll:
        while True:
            left = interval if deadline is None else min(interval, deadline - time.monotonic())
            if left <= 0:
                return event.is_set()
            if event.wait(left):
                return True
            if poll is not None:
                try:
                    poll(_MESSAGES_PER_POLL)
                except Exception as exc:  # noqa: BLE001 - never break the wait itself
                    warnings.warn(f"widgets are not updated while waiting ({exc!r})",
                                  RuntimeWarning, stacklevel=2)
                    poll = None


@contextlib.contextmanager
def kernel_poller() -> Iterator[Callable[[int], None] | None]:
    """``poll(n)`` handling up to ``n`` pending widget messages, or None outside a kernel."""
    kernel = _current_kernel()
    if kernel is None or getattr(_active, "on", False):
        yield None
        return
    _active.on = True
    try:
        with _poller_for(kernel) as poll:
            yield poll
    finally:
        _active.on = False


def _current_kernel():
    """The running ipykernel kernel when called on its main thread, else None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    kernel = jupyter_kernel()
    return kernel if getattr(kernel, "session", None) is not None else None


def _poller_for(kernel):
    """The context manager that polls ``kernel``'s shell messages."""
    if getattr(kernel, "shell_channel_thread", None) is not None:
        try:
            return _ShellChannelPoller(kernel)
        except Exception:  # noqa: BLE001 - another ipykernel layout: wait without polling
            return contextlib.nullcontext(None)
    try:  # ipykernel 6
        from jupyter_ui_poll import ui_events
    except ImportError:
        return contextlib.nullcontext(None)
    return ui_events()


class _ShellChannelPoller:
    """ipykernel 7: read the main shell's inproc socket, handle comms, keep the rest."""

    def __init__(self, kernel):
        self.kernel = kernel
        pair = kernel.shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)
        self.socket = pair.to_socket
        self.held: list = []

    def __enter__(self) -> Callable[[int], None]:
        return self.poll

    def __exit__(self, *exc) -> None:
        # Take what is left too: the socket's stream may not be woken again for messages
        # that arrived while we read it.
        try:
            self.poll(None)
        finally:
            for frames in self.held:
                # Queued behind the running cell, in their original order.
                self.kernel.io_loop.add_callback(self.kernel.shell_main, None, frames)
            self.held = []

    def poll(self, n: int | None) -> None:
        import zmq

        count = 0
        while n is None or count < n:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            count += 1
            msg = self._comm_message(frames)
            if msg is None:
                self.held.append(frames)
            else:
                self._handle(*msg)

    def _comm_message(self, frames):
        session = self.kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            header = session.deserialize(rest, content=False, copy=False)["header"]
            if header.get("msg_type") not in _COMM_TYPES:
                return None
            return idents, session.deserialize(rest, content=True, copy=False)
        except Exception:  # noqa: BLE001 - not ours to judge: the kernel reports it later
            return None

    def _handle(self, idents, msg) -> None:
        kernel = self.kernel
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        # The handler's output belongs to the comm message, the cell's output after it to
        # the cell: restore the cell's parent afterwards.
        parent = kernel.get_parent("shell")
        ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
        kernel.set_parent(idents, msg, channel="shell")
        stream = kernel.shell_channel_thread.manager.get_subshell_to_shell_channel_socket(None)
        try:
            handler(stream, idents, msg)  # comm.CommManager's handlers are plain functions
        except Exception:  # noqa: BLE001 - as the kernel does: log, keep serving
            kernel.log.error("Exception in comm handler:", exc_info=True)
        finally:
            kernel.set_parent(ident, parent, channel="shell")
