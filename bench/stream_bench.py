"""Streaming and render benchmark of EmbeddingScatter in a real JupyterLab + headless Chromium.

Anchor: jupyter-scatter measured on this machine kind with the same harness: 1.8 applied
updates/s, 14 s staleness, 8-11 fps at 60,000 points.

Stream: a kernel thread pushes jittered positions for N points with ``w.update`` as fast as
it can for DURATION s. Each frame carries its sequence number in the badge, so the page can
tell which submitted frame it shows. Reported:
  - applied updates/s (frames drawn by the page during the stream),
  - staleness at the end (age of the submitted frame on screen when the stream stops) and
    the time until the last frame is on screen,
  - page fps (requestAnimationFrame) and the longest frame gap,
  - Jupyter server RSS before/after, and websocket bytes per applied update,
  - cores used during the stream by the kernel, the server and each kind of Chromium process.
``--driver raw`` drives Chromium with bare DevTools calls (bench/raw_cdp.py) instead of
Playwright, whose DevTools Network domain has Chromium copy every 480 kB websocket frame to the
driver, costing the machine about 0.1 core that a user's browser does not spend.
``--profile`` prints the page's JS self time per function during the stream (Playwright only).
With ``--widget jscatter`` (or ``both``) the same stream is run against jupyter-scatter 1.0.1
(optional; ``pip install jupyter-scatter==1.0.1`` into the venv, it is not a dependency):
``jscatter.Scatter(x='x', y='y', data=df, color_by='label', height=400)`` with
``options(transition_points=False)``, updated through the public ``scatter.xy(x, y)``
(``--jscatter-mode points`` also sets the raw ``scatter.widget.points`` trait). jscatter has no
badge, so the frame on screen is told by a fingerprint: the float32 NDC coordinates of points 0
and 1 that the kernel sends with each update, read from the arguments of regl-scatterplot's
``draw()`` in the page; a frame counts as on screen when that ``draw()`` resolves. jscatter does
not coalesce, so after the kernel stops the page gets up to ``--catchup`` s to show the last
update; if it does not, the time to the last frame is reported as ">= wait".
Render: time from running the cell to the first drawn frame, and rAF frame times while
panning with the mouse, for 100,000 and 1,000,000 points.

Run:  .venv/bin/python bench/stream_bench.py [--n 60000] [--duration 15] [--render 100000 1000000]
      .venv/bin/python bench/stream_bench.py --widget both --rate 0 --render --repeat 2
      .venv/bin/python bench/stream_bench.py --rate 0 --render --driver raw --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]

STREAM_CELLS = [
    """import threading, time
import numpy as np
from tsimcne_widgets.scatter import EmbeddingScatter
N = {n}
rng = np.random.default_rng(0)
xy = rng.standard_normal((N, 2)).astype(np.float32)
w = EmbeddingScatter(xy, labels=rng.integers(0, 10, N), height=400, width=600,
                     max_rate={rate})
w""",
    """go = threading.Event(); done = threading.Event()
sent = []  # (time.time(), seq) per submitted frame
def _stream():
    go.wait()
    p = xy.copy(); k = 0; t0 = time.perf_counter()
    while time.perf_counter() - t0 < {duration}:
        p += rng.normal(0, 0.01, p.shape).astype(np.float32)
        k += 1
        sent.append((time.time(), k))
        w.update(p, animate=False, badge=f"seq {{k}}")
    sent.append((time.time(), -1))
    done.set()
threading.Thread(target=_stream, daemon=True).start()
print("READY")""",
]

# jupyter-scatter, installed from PyPI into the same venv. The kernel
# thread records per update (send time, seq, float32 NDC x/y of points 0 and 1) and writes the list
# to a file, because kernel round trips queue behind jscatter's backlog on the websocket.
JSCATTER_CELLS = [
    """import threading, time, json
import numpy as np, pandas as pd, jscatter
N = {n}
rng = np.random.default_rng(0)
df = pd.DataFrame({{'x': rng.standard_normal(N), 'y': rng.standard_normal(N),
                   'label': pd.Categorical(rng.integers(0, 10, N).astype(str))}})
scatter = jscatter.Scatter(x='x', y='y', data=df, color_by='label', height=400)
scatter.options(transition_points=False)
scatter.show()""",
    """MODE = {mode!r}  # 'xy': public scatter.xy(x, y); 'points': raw synced trait
go = threading.Event(); done = threading.Event()
sent = []  # (time.time(), seq, fingerprint) per submitted update
call_s = []
def _fp(a):
    return [float(np.float32(v)) for v in (a[0, 0], a[0, 1], a[1, 0], a[1, 1])]
def _stream():
    try:
        go.wait()
        x = df['x'].to_numpy().copy(); y = df['y'].to_numpy().copy()
        pts = np.asarray(scatter.widget.points, dtype=np.float32).copy()
        k = 0; t0 = time.perf_counter()
        while time.perf_counter() - t0 < {duration}:
            k += 1
            if MODE == 'xy':
                x += rng.normal(0, 0.01, N); y += rng.normal(0, 0.01, N)
                t = time.time(); c = time.perf_counter()
                scatter.xy(x, y)
                call_s.append(time.perf_counter() - c)
                sent.append((t, k, _fp(scatter.widget.points)))
            else:
                pts[:, :2] += rng.normal(0, 0.002, (N, 2)).astype(np.float32)
                np.clip(pts[:, :2], -1.0, 1.0, out=pts[:, :2])
                t = time.time(); c = time.perf_counter()
                scatter.widget.points = pts.copy()
                call_s.append(time.perf_counter() - c)
                sent.append((t, k, _fp(pts)))
        sent.append((time.time(), -1, None))
    finally:
        with open({sent_path!r} + '.tmp', 'w') as f:
            json.dump(dict(sent=sent,
                           call_ms_median=1e3 * float(np.median(call_s)) if call_s else None,
                           transition_points=bool(scatter.widget.transition_points)), f)
        import os; os.replace({sent_path!r} + '.tmp', {sent_path!r})
        done.set()
threading.Thread(target=_stream, daemon=True).start()
print("READY")""",
]

# jscatter's view keeps the regl-scatterplot instance as `container.api`
JS_JSC_READY = """(n) => { const c = [...document.querySelectorAll('.jp-OutputArea-output div')]
  .find(d => d.api && d.api.subscribe); if (!c) return false;
  try { const p = c.api.get('points'); return !!p && p.length === n; }
  catch (e) { return false; } }"""

# wrap regl-scatterplot's draw(): jscatter calls it once per points update; the frame is on
# screen when the promise resolves (rendered and copied into the widget's canvas)
JS_JSC_RECORD = """() => { const S = window.__S = {raf: [], frames: [], calls: 0, rejected: 0};
  const api = [...document.querySelectorAll('.jp-OutputArea-output div')]
    .find(d => d.api && d.api.subscribe).api;
  const orig = api.draw;
  api.draw = function (pts, opts) {
    S.calls++;
    const fp = pts && pts.length > 1 ? [pts[0][0], pts[0][1], pts[1][0], pts[1][1]] : null;
    const r = orig.call(this, pts, opts);
    r.then(() => S.frames.push([Date.now(), fp]), () => S.rejected++);
    return r; };
  const loop = () => { S.raf.push(Date.now()); requestAnimationFrame(loop); };
  requestAnimationFrame(loop); }"""

RENDER_CELLS = ["""import numpy as np, time
from tsimcne_widgets.scatter import EmbeddingScatter
rng = np.random.default_rng(0)
xy = rng.standard_normal(({n}, 2)).astype(np.float32)
labels = rng.integers(0, 10, {n})""", """t_create = time.time()
w = EmbeddingScatter(xy, labels=labels, height=400, width=600)
w"""]

INIT = r"""(() => {
  const Orig = window.WebSocket; window.__WS = [];
  class Hooked extends Orig { constructor(...a) { super(...a);
    if (String(a[0]).includes('/api/kernels/')) this.addEventListener('message', (ev) => {
      const d = ev.data;
      const n = typeof d === 'string' ? d.length : (d.byteLength ?? d.size);
      window.__WS.push([Date.now(), n]);
    }); if (String(a[0]).includes('/api/kernels/')) this.addEventListener('close',
      (ev) => (window.__WSC = window.__WSC || []).push([Date.now(), ev.code])); } }
  window.WebSocket = Hooked;
})();"""

JS_IDLE = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const s = nb && nb.sessionContext && nb.sessionContext.session; const k = s && s.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }"""

JS_EVAL = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const f = k.requestExecute({code, store_history: false}); let out = '';
  f.onIOPub = m => { if (m.header.msg_type === 'stream') out += m.content.text;
    else if (m.header.msg_type === 'execute_result') out += m.content.data['text/plain'];
    else if (m.header.msg_type === 'error') out += 'ERROR ' + m.content.evalue; };
  await f.done; return out; }"""

JS_RECORD = """() => { const S = window.__S = {raf: [], frames: []};
  const host = document.querySelector('.tsw-scatter-host');
  const badge = host.querySelector('.tsw-badge');
  new MutationObserver(() => S.frames.push([Date.now(), badge.textContent,
                                             Number(host.dataset.drawMs)]))
    .observe(host, {attributes: true, attributeFilter: ['data-frame']});
  const loop = () => { S.raf.push(Date.now()); requestAnimationFrame(loop); };
  requestAnimationFrame(loop); }"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_ticks():
    """CPU time (s) per process group: kernel, server, and Chromium's processes by type."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{d}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if "ipykernel" in cmd:
            key = "kernel"
        elif "jupyterlab" in cmd:
            key = "server"
        elif cmd.startswith(("/usr/lib/chromium", CHROMIUM)):
            m = re.search(r"--type=([\w-]+)", cmd)
            key = "chromium-" + (m.group(1) if m else "browser")
            if "--utility-sub-type=network" in cmd:
                key = "chromium-network"
        elif "playwright" in cmd:
            key = "playwright-driver"
        else:
            key = "other"
        out[key] = out.get(key, 0.0) + (int(st[11]) + int(st[12])) / hz
    return out


def cpu_diff(a, b, seconds):
    """Cores used per group between two cpu_ticks() snapshots."""
    return {k: round((b.get(k, 0.0) - a.get(k, 0.0)) / seconds, 2) for k in sorted(b)
            if b.get(k, 0.0) - a.get(k, 0.0) > 0.01 * seconds}


def write_nb(path, cells):
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))


def start_lab(root):
    nbdir = root / "nb"
    nbdir.mkdir()
    settings = root / "settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "cfg"),
               JUPYTER_RUNTIME_DIR=str(root / "rt"), JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "ws"), IPYTHONDIR=str(root / "ipy"))
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={nbdir}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=nbdir, env=env, stdout=open(root / "lab.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(480):
        try:
            with urllib.request.urlopen(url + "/api", timeout=2):
                return proc, url, nbdir
        except OSError:
            time.sleep(0.25)
    raise TimeoutError((root / "lab.log").read_text())


def open_and_run(page, url, name):
    # a workspace of its own, so that earlier notebooks are not restored next to this one
    page.goto(f"{url}/lab/workspaces/{Path(name).stem}/tree/{name}")
    page.wait_for_function(JS_IDLE, timeout=120_000, polling=250)
    t0 = time.time()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return t0


def gaps(raf):
    d = [b - a for a, b in zip(raf, raf[1:], strict=False)]
    return d


def start_stream(page, record_js, server_pid):
    """Start the page's recorders, then the kernel's stream; return the server RSS before."""
    page.evaluate(record_js)
    time.sleep(2)
    rss0 = rss_mb(server_pid)
    page.evaluate("() => { window.__WS.length = 0; }")
    # do not await the reply: it would queue behind the streamed updates
    page.evaluate("""() => { const k = window.jupyterapp.shell.currentWidget.sessionContext
      .session.kernel; k.requestExecute({code: 'go.set()', silent: true}); }""")
    return rss0


def profile_summary(profile, top=25):
    """Self time per JS function (and V8's (program)/(garbage collector)) of a CDP profile."""
    nodes = {nd["id"]: nd for nd in profile["nodes"]}
    dt = profile["timeDeltas"]
    self_us = {}
    for sid, d in zip(profile["samples"][:-1], dt[1:], strict=False):
        cf = nodes[sid]["callFrame"]
        key = (f"{cf['functionName'] or '(anon)'} {cf['url'].rsplit('/', 1)[-1][:40]}"
               f":{cf['lineNumber']}:{cf['columnNumber']}")
        self_us[key] = self_us.get(key, 0) + d
    total = sum(self_us.values()) or 1
    rows = sorted(self_us.items(), key=lambda kv: -kv[1])[:top]
    return [f"{100 * v / total:5.1f}%  {v / 1e6:6.2f} s  {k}" for k, v in rows]


def bench_stream(browser, url, nbdir, server_pid, n, duration, rate, profile=False):
    write_nb(nbdir / "stream.ipynb", [c.format(n=n, duration=duration, rate=rate)
                                      for c in STREAM_CELLS])
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    ctx.add_init_script(INIT)
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    open_and_run(page, url, "stream.ipynb")
    page.wait_for_function("() => { const e = document.querySelector('.tsw-scatter-host');"
                           " return e && e.dataset.frame === '0'; }")
    page.locator(".jp-OutputArea-output", has_text="READY").wait_for()
    cdp = ctx.new_cdp_session(page) if profile and hasattr(ctx, "new_cdp_session") else None
    if cdp is not None:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 500})
        cdp.send("Profiler.start")
    rss0 = start_stream(page, JS_RECORD, server_pid)
    rss_peak = rss0
    cpu0, c0 = cpu_ticks(), time.time()
    cpu_mid = None
    t_end = time.time() + duration + 60
    while time.time() < t_end:
        time.sleep(1)
        rss_peak = max(rss_peak, rss_mb(server_pid))
        if cpu_mid is None and time.time() - c0 >= duration - 2:
            cpu_mid, c1 = cpu_ticks(), time.time()  # before the kernel round trip below
        if "True" in page.evaluate(JS_EVAL, "print(done.is_set())"):
            break
    time.sleep(2)  # let the last frame land
    if cdp is not None:
        print("\n".join(profile_summary(cdp.send("Profiler.stop")["profile"])), flush=True)
    rss1 = rss_mb(server_pid)
    sent = json.loads(page.evaluate(JS_EVAL, "import json; print(json.dumps(sent))"))
    stats = page.evaluate(JS_EVAL, "print(w.stats)")
    S = page.evaluate("() => window.__S")
    ws = page.evaluate("() => window.__WS")
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    ctx.close()

    sub = {k: t for t, k in sent if k > 0}
    t_start, t_stop = sent[0][0], sent[-1][0]
    frames = [(t / 1000, int(b.split()[1])) for t, b, _ in S["frames"] if b.startswith("seq ")]
    draw_ms = sorted(d for _, b, d in S["frames"] if b.startswith("seq "))
    during = [f for f in frames if t_start <= f[0] <= t_stop]
    shown_at_stop = max((f for f in frames if f[0] <= t_stop), default=None)
    last_seq = max(sub)
    last_on_screen = next((t for t, k in frames if k == last_seq), float("nan"))
    raf = [r / 1000 for r in S["raf"] if t_start * 1000 <= r <= t_stop * 1000]
    raf_d = gaps(raf)
    ws_bytes = sum(b for t, b in ws if t_start * 1000 <= t <= (t_stop + 2) * 1000)
    out = {
        "n": n,
        "submitted": len(sub),
        "applied_per_s": len(during) / (t_stop - t_start),
        "staleness_at_end_s": (t_stop - sub[shown_at_stop[1]]) if shown_at_stop else None,
        "last_frame_on_screen_after_s": last_on_screen - t_stop,
        "page_fps": len(raf) / max(raf[-1] - raf[0], 1e-9) if len(raf) > 1 else 0.0,
        "max_frame_gap_s": max(raf_d) if raf_d else None,
        "server_rss_mb": [round(rss0), round(rss_peak), round(rss1)],
        "bytes_per_applied_update": ws_bytes / max(len(frames), 1),
        "bytes_8N": 8 * n,
        "kernel_stats": stats.strip(),
        "stream_s": t_stop - t_start,
        "js_draw_ms_median": draw_ms[len(draw_ms) // 2] if draw_ms else None,
        "cores_used": cpu_diff(cpu0, cpu_mid, c1 - c0) if cpu_mid else None,
    }
    return out


def kernel_ids(url):
    with urllib.request.urlopen(url + "/api/kernels", timeout=10) as r:
        return [k["id"] for k in json.load(r)]


def delete_kernels(url):
    for kid in kernel_ids(url):
        req = urllib.request.Request(f"{url}/api/kernels/{kid}", method="DELETE")
        try:
            urllib.request.urlopen(req, timeout=60).read()
        except OSError as e:
            print("kernel delete failed:", e, file=sys.stderr)


def bench_stream_jscatter(browser, url, nbdir, server_pid, n, duration, mode, catchup, log):
    """The stream of bench_stream, against jupyter-scatter; same definitions of the figures."""
    name = f"jscatter_{mode}_{int(time.time())}"
    sent_path = str(nbdir / f"{name}_sent.json")
    write_nb(nbdir / f"{name}.ipynb", [c.format(n=n, duration=duration, mode=mode,
                                                sent_path=sent_path) for c in JSCATTER_CELLS])
    log_pos = log.stat().st_size
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    ctx.add_init_script(INIT)
    page = ctx.new_page()
    page.set_default_timeout(180_000)
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text[:160]}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {str(e)[:160]}"))
    open_and_run(page, url, f"{name}.ipynb")
    page.wait_for_function(JS_JSC_READY, arg=n, polling=250)
    page.locator(".jp-OutputArea-output", has_text="READY").wait_for()
    rss0 = start_stream(page, JS_JSC_RECORD, server_pid)
    t_go = time.time()
    rss_peak = rss0
    k_info = None
    # the kernel thread writes its log to disk when it stops; no kernel round trip needed
    while time.time() < t_go + duration + 30:
        time.sleep(1)
        rss_peak = max(rss_peak, rss_mb(server_pid))
        if os.path.exists(sent_path):
            with open(sent_path) as f:
                k_info = json.load(f)
            break
    if k_info is None:
        raise RuntimeError("jscatter stream thread did not finish")
    sent = k_info["sent"]
    sub = {k: (t, tuple(fp)) for t, k, fp in sent if k > 0}
    by_fp = {fp: (t, k) for k, (t, fp) in sub.items()}
    t_start, t_stop = sent[0][0], sent[-1][0]
    last_seq = max(sub)
    last_fp = sub[last_seq][1]
    # catch-up: up to `catchup` s after the kernel stopped for the last update to be on screen
    caught_up = False
    while time.time() < t_stop + catchup:
        rss_peak = max(rss_peak, rss_mb(server_pid))
        if rss_peak > 9000:  # guard: stop waiting if the server balloons past 9 GB
            break
        shown = page.evaluate("() => window.__S.frames.slice(-8).map(f => f[1])")
        if any(fp is not None and tuple(fp) == last_fp for fp in shown):
            caught_up = True
            break
        time.sleep(1)
    t_wait_end = time.time()
    time.sleep(2)  # let the last frame land
    rss1 = rss_mb(server_pid)
    S = page.evaluate("() => window.__S")
    ws = page.evaluate("() => window.__WS")
    wsc = page.evaluate("() => window.__WSC || []")
    t_end = t_wait_end + 2
    with open(log, "rb") as f:
        f.seek(log_pos)
        srv = f.read().decode(errors="replace")
    ctx.close()
    delete_kernels(url)
    time.sleep(1)
    with open(log, "rb") as f:
        f.seek(log_pos)
        srv_all = f.read().decode(errors="replace")

    frames = []  # (time on screen, seq)
    unmatched = 0
    for t, fp in S["frames"]:
        m = by_fp.get(tuple(fp)) if fp else None
        if m is None:
            unmatched += 1
        else:
            frames.append((t / 1000, m[1]))
    frames = [f for f in frames if f[0] <= t_end]
    during = [f for f in frames if t_start <= f[0] <= t_stop]
    shown_at_stop = max((f for f in frames if f[0] <= t_stop), default=None)
    last_shown = max(frames, default=None)
    last_on_screen = next((t for t, k in frames if k == last_seq), None)
    raf = [r / 1000 for r in S["raf"] if t_start * 1000 <= r <= t_stop * 1000]
    raf_d = gaps(raf)
    ws_bytes = sum(b for t, b in ws if t_start * 1000 <= t <= t_end * 1000)
    applied = [f for f in frames if f[0] >= t_start]
    seqs = [k for _, k in applied]
    waited = t_wait_end - t_stop
    return {
        "widget": f"jscatter-{mode}",
        "n": n,
        "submitted": len(sub),
        "applied_per_s": len(during) / (t_stop - t_start),
        "staleness_at_end_s": (t_stop - sub[shown_at_stop[1]][0]) if shown_at_stop else None,
        "last_frame_on_screen_after_s": (last_on_screen - t_stop) if last_on_screen
        else f">= {waited:.1f}",
        "caught_up": caught_up,
        "catchup_wait_s": round(waited, 1),
        # age of the newest update on screen when the wait ended (>= staleness if not caught up)
        "staleness_at_end_of_wait_s": None if caught_up or last_shown is None
        else t_wait_end - sub[last_shown[1]][0],
        "page_fps": len(raf) / max(raf[-1] - raf[0], 1e-9) if len(raf) > 1 else 0.0,
        "max_frame_gap_s": max(raf_d) if raf_d else None,
        "server_rss_mb": [round(rss0), round(rss_peak), round(rss1)],
        "bytes_per_applied_update": ws_bytes / max(len(applied), 1),
        "bytes_8N": 8 * n,
        "applied_total": len(applied),
        "applied_in_order": seqs == sorted(seqs),
        "not_shown_by_end_of_wait": len(sub) - len(set(seqs)),
        "draw_calls": S["calls"], "draw_rejected": S["rejected"], "draws_unmatched": unmatched,
        "kernel_updates_per_s": len(sub) / (t_stop - t_start),
        "kernel_call_ms_median": k_info["call_ms_median"],
        "transition_points": k_info["transition_points"],
        "ws_closes_after_stop_s": [round(t / 1000 - t_stop, 1) for t, _ in wsc
                                   if t / 1000 > t_start],
        "server_ping_timeouts": srv.count("ping timeout"),
        "server_ws_closed_errors": srv.count("WebSocketClosedError"),
        # queued writes that fail when the page and kernel are closed with a backlog
        "server_ws_closed_errors_at_teardown": srv_all.count("WebSocketClosedError")
        - srv.count("WebSocketClosedError"),
        "console_warn_err": sorted({c for c in console if not c.startswith(("log", "debug",
                                                                             "info"))})[:6],
        "stream_s": t_stop - t_start,
    }


def bench_render(browser, url, nbdir, n):
    name = f"render_{n}.ipynb"
    write_nb(nbdir / name, [c.format(n=n) for c in RENDER_CELLS])
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = ctx.new_page()
    page.set_default_timeout(300_000)
    open_and_run(page, url, name)
    page.wait_for_function("() => { const e = document.querySelector('.tsw-scatter-host');"
                           " return e && Number(e.dataset.draws) >= 1; }", polling=10)
    t_drawn = page.evaluate("() => Date.now()") / 1000
    t_first = t_drawn - float(page.evaluate(JS_EVAL, "print(t_create)"))
    canvas = page.locator("canvas.tsw-canvas")
    canvas.scroll_into_view_if_needed()
    bb = canvas.bounding_box()
    page.evaluate("() => { const S = window.__P = []; const loop = () => {"
                  " S.push(performance.now()); requestAnimationFrame(loop); };"
                  " requestAnimationFrame(loop); }")
    cx, cy = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    t_pan = time.time()
    for k in range(60):
        page.mouse.move(cx + 100 * ((k % 20) / 20 - 0.5), cy + 50 * ((k % 10) / 10 - 0.5))
        time.sleep(1 / 60)
    page.mouse.up()
    pan_s = time.time() - t_pan
    raf = page.evaluate("() => window.__P")
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    ctx.close()
    d = gaps(raf)
    d.sort()
    return {"n": n, "time_to_first_draw_s": t_first, "pan_step_ms": 1000 * pan_s / 60,
            "pan_frame_ms_median": d[len(d) // 2] if d else None,
            "pan_frame_ms_p95": d[int(0.95 * (len(d) - 1))] if d else None,
            "pan_frame_ms_max": d[-1] if d else None, "pan_s": pan_s, "frames": len(raf)}


def stop_lab(proc, root):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=20.0,
                    help="max_rate of the widget (its default, 20; 0: no cap)")
    ap.add_argument("--render", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--widget", choices=["ours", "jscatter", "both"], default="ours",
                    help="which widget(s) to stream (render is measured for ours only)")
    ap.add_argument("--jscatter-mode", choices=["xy", "points", "both"], default="xy",
                    help="jscatter update path: public xy() and/or the raw points trait")
    ap.add_argument("--catchup", type=float, default=60.0,
                    help="max s to wait after the kernel stops for jscatter's last frame")
    ap.add_argument("--repeat", type=int, default=1, help="stream runs per widget (interleaved)")
    ap.add_argument("--driver", choices=["playwright", "raw"], default="playwright",
                    help="raw: drive Chromium over bare DevTools calls (bench/raw_cdp.py), "
                    "which, unlike Playwright, does not have each websocket frame mirrored "
                    "to the driver (streams only)")
    ap.add_argument("--profile", action="store_true",
                    help="print the page's JS self time per function during our stream")
    args = ap.parse_args()
    runs = []
    if not args.no_stream:
        if args.widget in ("ours", "both"):
            runs.append("ours")
        if args.widget in ("jscatter", "both"):
            try:
                import jscatter  # noqa: F401
            except ImportError as e:
                print(f"SKIP jupyter-scatter: `import jscatter` failed ({e}); install it into the "
                      "venv with `pip install jupyter-scatter==1.0.1` to benchmark it.", flush=True)
            else:
                modes = ["xy", "points"] if args.jscatter_mode == "both" else [args.jscatter_mode]
                runs += [f"jscatter-{m}" for m in modes]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        stream_browser = browser
        if args.driver == "raw":
            from raw_cdp import RawBrowser  # bench/ is on sys.path: this script's folder
            stream_browser = RawBrowser(CHROMIUM, ARGS)
        for rep in range(args.repeat):
            for which in runs:
                # a fresh Jupyter server per stream, so that its memory figures are its own
                root = Path(tempfile.mkdtemp(prefix="stream-bench-"))
                proc, url, nbdir = start_lab(root)
                try:
                    if which == "ours":
                        r = bench_stream(stream_browser, url, nbdir, proc.pid, args.n,
                                         args.duration, args.rate, args.profile)
                    else:
                        r = bench_stream_jscatter(stream_browser, url, nbdir, proc.pid, args.n,
                                                  args.duration, which.split("-")[1],
                                                  args.catchup, root / "lab.log")
                    r.setdefault("widget", which)
                    r["driver"] = args.driver
                    r["run"] = rep + 1
                    print(json.dumps(r, indent=1), flush=True)
                finally:
                    stop_lab(proc, root)
        if args.render:
            root = Path(tempfile.mkdtemp(prefix="stream-bench-"))
            proc, url, nbdir = start_lab(root)
            try:
                for n in args.render:
                    print(json.dumps(bench_render(browser, url, nbdir, n), indent=1), flush=True)
            finally:
                stop_lab(proc, root)
        browser.close()


if __name__ == "__main__":
    main()
