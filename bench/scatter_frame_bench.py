"""Per-frame cost of the scatter front end in headless Chromium, without Jupyter.

The built bundle (tsimcne_widgets/static/scatter.js) is rendered with a stand-in model in a
plain page. A frame loop like the kernel's flow control sends new positions as soon as the
previous frame is acknowledged, so frames/s here is the front end's ceiling: no websocket,
no kernel, no server. ``--hog`` keeps one core busy, as the stream benchmark's pushing kernel
thread does. Reports frames/s, the median draw time and the CPU time per frame of Chromium's
renderer and GPU (SwiftShader) processes.

Run:  .venv/bin/python bench/scatter_frame_bench.py [--n 60000] [--seconds 10] [--hog]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tsimcne_widgets._scatter_encoding import default_opacity, default_point_size

sys.path.insert(0, str(Path(__file__).parent))
from stream_bench import ARGS, CHROMIUM, cpu_diff, cpu_ticks  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1] / "tsimcne_widgets" / "static" / "scatter.js"

PAGE = """<!doctype html><html><head><link rel="stylesheet" href="./scatter.css"></head>
<body style="margin:0"><div id="host" style="width:760px"></div>
<script type="module">
import widget from "./scatter.js";
const N = %(n)d, K = 8;
const frames = [];
let s = 1;
const rnd = () => { s = (s * 16807) %% 2147483647; return s / 2147483647; };
for (let k = 0; k < K; k++) {
  const a = new Float32Array(2 * N);
  for (let i = 0; i < 2 * N; i++) a[i] = (rnd() + rnd() + rnd() - 1.5) * (1 + 0.01 * k);
  frames.push(new DataView(a.buffer));
}
const codes = new Uint8Array(N);
for (let i = 0; i < N; i++) codes[i] = i %% 10;
const state = {
  _xy: frames[0], _frame: 0, _animate: false, _label_kind: "categorical",
  _labels: new DataView(codes.buffer), _label_dtype: "uint8",
  _colors: ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2",
            "#7f7f7f","#bcbd22","#17becf"],
  _categories: ["0","1","2","3","4","5","6","7","8","9"], _value_range: [0, 1],
  point_size: %(size)s, opacity: %(opacity)s, theme: "light", width: 600, height: 400,
  hidden: [], _selection: new DataView(new ArrayBuffer(0)), title: "bench", badge: "",
  frame_kind: "final", mouse_mode: "pan", highlight: [], lasso: [],
};
const handlers = {};
const S = window.__S = {acks: [], draw: []};
const host = document.getElementById("host");
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on(ev, fn) { for (const e of ev.split(" ")) (handlers[e] = handlers[e] || []).push(fn); },
  off() {},
  send(msg) {
    if (msg.type !== "ack") return;
    S.acks.push(performance.now());
    S.draw.push(Number(host.dataset.drawMs));
    if (!window.__go) return;
    // the next frame, as the kernel would send it once acknowledged
    setTimeout(() => {
      state._xy = frames[(msg.frame + 1) %% K];
      state.badge = "seq " + (msg.frame + 1);
      state._frame = msg.frame + 1;
      for (const e of ["change:_xy", "change:badge", "change:_frame"])
        for (const fn of handlers[e] || []) fn();
    }, %(delay)s);
  },
};
widget.render({model, el: host});
window.__kick = () => { window.__go = true; model.send({type: "ack", frame: state._frame}); };
</script></body></html>"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=float, default=None, help="point size (default: widget's)")
    ap.add_argument("--opacity", type=float, default=None)
    ap.add_argument("--delay", type=float, default=0.0,
                    help="ms between ack and next frame (the kernel round trip)")
    ap.add_argument("--hog", action="store_true", help="keep one core busy meanwhile")
    a = ap.parse_args()
    size = a.size if a.size is not None else default_point_size(a.n)
    opacity = a.opacity if a.opacity is not None else default_opacity(a.n)

    root = Path(tempfile.mkdtemp(prefix="tsw-frame-"))
    shutil.copy(BUNDLE, root / "scatter.js")
    shutil.copy(BUNDLE.with_suffix(".css"), root / "scatter.css")  # the widget's _css
    (root / "index.html").write_text(PAGE % dict(n=a.n, size=size, opacity=opacity,
                                                 delay=a.delay))
    handler = functools.partial(_QuietHandler, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.hog else None
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/index.html")
            page.wait_for_function("() => window.__S && window.__S.acks.length >= 1")
            time.sleep(1)
            page.evaluate("() => { window.__S.acks.length = 0; window.__S.draw.length = 0; }")
            c0, t0 = cpu_ticks(), time.time()
            page.evaluate("() => window.__kick()")
            time.sleep(a.seconds)
            c1, t1 = cpu_ticks(), time.time()
            page.evaluate("() => { window.__go = false; }")
            S = page.evaluate("() => window.__S")
            browser.close()
    finally:
        srv.shutdown()
        if hog:
            hog.kill()
        shutil.rmtree(root, ignore_errors=True)
    acks = S["acks"]
    nfr = len(acks) - 1
    fps = nfr / ((acks[-1] - acks[0]) / 1000) if nfr > 0 else 0.0
    cores = cpu_diff(c0, c1, t1 - t0)
    draw = sorted(d for d in S["draw"] if d == d)
    out = {"n": a.n, "point_size": round(size, 2), "hog": a.hog, "delay_ms": a.delay,
           "frames_per_s": round(fps, 2), "draw_ms_median": draw[len(draw) // 2] if draw else None,
           "cores_used": cores,
           "cpu_ms_per_frame": {k: round(1000 * v / max(fps, 1e-9), 1) for k, v in cores.items()
                                if k.startswith("chromium")}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
