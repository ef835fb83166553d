"""Real-browser fixtures: a throw-away JupyterLab server and headless Debian Chromium.

- ``lab``: JupyterLab on 127.0.0.1 with a free port, no token, isolated config dirs (one per
  session). It dies with pytest, even on SIGTERM/SIGKILL.
- ``browser``: Chromium via Playwright's ``executable_path`` (no Playwright browser download).
  The binary ($CHROMIUM, else /usr/bin/chromium) is only looked up here: `make browser-deps`
  (a prerequisite of `make test`) installs it; without it the tests are skipped, saying so.
- Helpers to open a notebook, wait for its kernel, run all cells and run code on the kernel.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",  # WebGL still works: ANGLE falls back to SwiftShader
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    for path in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    # Installing is the Makefile's job (root/sudo, apt-get), not a fixture's.
    path = _find_chromium()
    if path is None:
        where = ", ".join(("$CHROMIUM",) + CHROMIUM_CANDIDATES)
        pytest.skip(f"Chromium not found ({where}): install Debian's chromium with "
                    "`make browser-deps`")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: SIGTERM the server if pytest dies (even by SIGKILL); it then stops its kernels."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, non-Linux
        pass


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A throw-away JupyterLab server on a free port, no token, isolated dirs."""
    pytest.importorskip("jupyterlab")
    root = tmp_path_factory.mktemp("lab")
    nbdir = root / "nb"
    nbdir.mkdir()
    settings = root / "lab-settings"
    _write_json(  # no "official Jupyter news?" toast
        settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / "cfg"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        IPYTHONDIR=str(root / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={nbdir}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # the server refuses to run as root otherwise
        cmd.append("--allow-root")
    log_path = root / "jupyterlab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        cmd, cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
    )
    # A SIGTERM to pytest (CI timeout) would skip teardown; make it a KeyboardInterrupt.
    prev_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url + "/api", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab not up:\n{log_path.read_text()}")
            time.sleep(0.25)
        yield types.SimpleNamespace(url=url, nbdir=nbdir, log=log_path, root=root)
    finally:
        signal.signal(signal.SIGTERM, prev_term)
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture(scope="session")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --------------------------------------------------------------------------- page helpers
JS_KERNEL_IDLE = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = nb && nb.sessionContext && nb.sessionContext.session;
  const k = s && s.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""

JS_KERNEL_EVAL = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const fut = k.requestExecute({ code, silent: false, store_history: false });
  let out = '';
  fut.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === 'stream') out += msg.content.text;
    else if (t === 'execute_result') out += msg.content.data['text/plain'];
    else if (t === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
  };
  await fut.done;
  return out;
}"""


class NotebookPage:
    """A JupyterLab notebook opened in a browser page."""

    def __init__(self, page, lab):
        self.page = page
        self.lab = lab
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def open(self, name: str) -> None:
        # One workspace per notebook: with the default workspace Lab restores notebooks
        # opened by earlier tests next to this one (a second kernel, hidden outputs).
        workspace = Path(name).stem.replace(" ", "-")
        self.page.goto(f"{self.lab.url}/lab/workspaces/{workspace}/tree/{name}")
        # A kernelspec in the metadata makes Lab start the kernel; wait for idle + connected
        # before running anything, or Lab shows a "Select Kernel" dialog.
        self.page.wait_for_function(JS_KERNEL_IDLE, timeout=120_000, polling=250)

    def run_all(self) -> None:
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def kernel(self, code: str) -> str:
        """Run `code` on the notebook's kernel without a cell; return its text output."""
        out = self.page.evaluate(JS_KERNEL_EVAL, code)
        if out.startswith("ERROR") or "\nERROR " in out:
            raise AssertionError(f"kernel code failed: {out}\ncode:\n{code}")
        return out

    def wait_kernel(self, code: str, timeout: float = 30.0, what: str = "") -> str:
        """Poll until `code` prints something starting with 'True'."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.kernel(code)
            if out.strip().startswith("True"):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or code!r}: last {out!r}")
            time.sleep(0.2)

    def outputs(self) -> str:
        return "\n".join(self.page.locator(".jp-OutputArea-output").all_inner_texts())

    def report(self) -> str:
        out = self.lab.root / "failure.png"
        try:
            self.page.screenshot(path=str(out))
        except Exception:  # noqa: BLE001
            pass
        try:
            outs = self.outputs()[-4000:]
        except Exception:  # noqa: BLE001
            outs = "?"
        return (f"--- notebook outputs ---\n{outs}\n--- browser console ---\n"
                + "\n".join(self.console[-60:])
                + f"\n--- screenshot: {out}\n--- server log tail ---\n"
                + self.lab.log.read_text()[-3000:])


@pytest.fixture(scope="module")
def notebook_page(browser, lab, request):
    """A fresh browser context and page for one test module."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    nbp = NotebookPage(page, lab)
    failed_before = request.session.testsfailed
    yield nbp
    if request.session.testsfailed > failed_before:
        print("\n" + nbp.report())
    try:
        ctx.close()
    except Exception:  # noqa: BLE001 - browser already gone
        pass


def write_notebook(path: Path, source: str) -> None:
    """A one-cell notebook with kernelspec metadata (without it Lab asks for a kernel)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(path))
