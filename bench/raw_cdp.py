"""A minimal Chromium DevTools driver for benchmarks: navigate and evaluate, nothing else.

Playwright enables the DevTools Network domain on every page it drives, so Chromium mirrors
each websocket frame to the driver (base64 in a JSON event). With 480 kB position updates
that costs the browser process and the driver about 0.2 of the machine's 2 cores, which a
user's browser does not spend. This driver enables only the Page domain
(for init scripts; its events are a few per navigation) and otherwise sends
``Page.addScriptToEvaluateOnNewDocument``, ``Page.navigate`` and ``Runtime.evaluate``.

It mimics the few Playwright calls that ``stream_bench.py`` makes (``new_context``,
``add_init_script``, ``new_page``, ``goto``, ``evaluate``, ``wait_for_function``,
``locator(...).wait_for()``, ``close``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client, a dependency of jupyter_server


def _die_with_parent() -> None:
    """Linux: Chromium gets SIGKILL when this driver dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, non-Linux
        pass


class RawBrowser:
    def __init__(self, executable: str, args: list[str]):
        self.executable, self.args = executable, list(args)

    def new_context(self, viewport=None, device_scale_factor=1):
        vp = viewport or {"width": 1280, "height": 1000}
        return RawContext(self, vp, device_scale_factor)

    def close(self):
        pass


class RawContext:
    """One Chromium process with a fresh profile (one page)."""

    def __init__(self, browser: RawBrowser, viewport: dict, scale: float):
        self._dir = Path(tempfile.mkdtemp(prefix="rawcdp-"))
        cmd = [browser.executable, *browser.args, "--remote-debugging-port=0",
               f"--user-data-dir={self._dir}",
               f"--window-size={viewport['width']},{viewport['height']}",
               f"--force-device-scale-factor={scale}", "about:blank"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True, preexec_fn=_die_with_parent)
        # a Chromium left running (driver killed, exception) would skew every later figure
        atexit.register(self._kill)
        port_file = self._dir / "DevToolsActivePort"
        for _ in range(200):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=5) as r:
            ws_url = json.load(r)["webSocketDebuggerUrl"]
        self._ws = websocket.create_connection(ws_url, suppress_origin=True)
        self._id = 0
        self._session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget",
                                  {"targetId": target, "flatten": True})["sessionId"]
        # as Playwright does: a headless page counts as focused (JupyterLab's current widget
        # follows focus)
        self.call("Emulation.setFocusEmulationEnabled", {"enabled": True})
        # needed for init scripts; its events (navigation, lifecycle) are few and ignored
        self.call("Page.enable")

    def call(self, method: str, params: dict | None = None, timeout: float = 120.0):
        self._id += 1
        self._ws.settimeout(timeout)
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self._session:
            msg["sessionId"] = self._session
        self._ws.send(json.dumps(msg))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]


    def add_init_script(self, source: str):
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def new_page(self):
        return RawPage(self)

    def _kill(self):
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def close(self):
        try:
            self._ws.close()
        finally:
            self._kill()
            atexit.unregister(self._kill)


class RawPage:
    def __init__(self, ctx: RawContext):
        self._ctx = ctx
        self._timeout = 30.0

    def set_default_timeout(self, ms: float):
        self._timeout = ms / 1000

    def on(self, event: str, handler):
        pass  # console and page errors are not collected by this driver

    def goto(self, url: str):
        self._ctx.call("Page.navigate", {"url": url})

    def evaluate(self, fn: str, arg=None):
        expr = f"({fn})({json.dumps(arg) if arg is not None else ''})"
        r = self._ctx.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                                "returnByValue": True}, self._timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(json.dumps(r["exceptionDetails"])[:500])
        return r["result"].get("value")

    def wait_for_function(self, fn: str, arg=None, timeout=None, polling=100):
        t_end = time.time() + (timeout / 1000 if timeout else self._timeout)
        while True:
            try:
                if self.evaluate(fn, arg):
                    return
            except RuntimeError:
                pass  # the page is still loading
            if time.time() > t_end:
                raise TimeoutError(f"wait_for_function: {fn[:80]}")
            time.sleep(polling / 1000 if isinstance(polling, (int, float)) else 0.1)

    def locator(self, selector: str, has_text: str = ""):
        page = self

        class _Loc:
            def wait_for(self):
                page.wait_for_function(
                    "([s, t]) => [...document.querySelectorAll(s)]"
                    ".some(e => e.textContent.includes(t))", [selector, has_text])
        return _Loc()
