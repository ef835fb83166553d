// EmbeddingScatter front end: regl-scatterplot (WebGL) fed from binary buffers.
//
// Data path (see DESIGN.md section 4):
// - `_xy` is float32 bytes, all x then all y. It arrives as a DataView; we read it through a
//   Float32Array view (no copy) and write normalised positions into ONE interleaved
//   Float32Array. The per-point array handed to regl-scatterplot holds subarray views on that
//   buffer; it is built once per point count, never per frame.
// - Every frame is acknowledged with `model.send({type: "ack", frame})` once drawn (in the
//   render that puts it on the canvas), which is what Python's flow control waits for.
// - The spatial index (needed only for lasso and hover) is rebuilt lazily: streamed frames
//   reuse the previous index and mark it stale; the pointer entering the plot rebuilds it.
import createScatterplot, { createRegl, createRenderer, createSpatialIndex } from "regl-scatterplot";

const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

function rampHex(stops, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = (i / (n - 1)) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    const c = stops[k].map((v, j) => Math.round(v + f * (stops[k + 1][j] - v)));
    out.push("#" + c.map((v) => v.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}
const VIRIDIS_256 = rampHex(VIRIDIS, 256);

function typed(view, Type) {
  if (!view) return new Type(0);
  if (view instanceof DataView || ArrayBuffer.isView(view)) {
    return new Type(view.buffer, view.byteOffset, Math.floor(view.byteLength / Type.BYTES_PER_ELEMENT));
  }
  if (view instanceof ArrayBuffer) return new Type(view);
  return new Type(0);
}

function u32Bytes(arr) {
  const a = Uint32Array.from(arr).sort();
  return new DataView(a.buffer);
}

const CSS = `
/* In a flex row or grid cell the widget may shrink below its drawn size; the plot then
   follows (ResizeObserver in render). A class rule, since ipywidgets' Layout owns el.style. */
.tsw-scatter-host { min-width: 0; max-width: 100%; }
.tsw-scatter { --tsw-bg: var(--jp-layout-color0, #fff); --tsw-fg: var(--jp-ui-font-color1, #222);
  --tsw-muted: var(--jp-ui-font-color2, #666); --tsw-border: var(--jp-border-color2, #ddd);
  --tsw-panel: var(--jp-layout-color1, #fff);
  font: 12px var(--jp-ui-font-family, system-ui, sans-serif); color: var(--tsw-fg);
  background: var(--tsw-bg); border: 1px solid var(--tsw-border); border-radius: 4px;
  padding: 6px; box-sizing: border-box; max-width: 100%; }
.tsw-scatter.tsw-dark { --tsw-bg: #111; --tsw-fg: #eee; --tsw-muted: #aaa; --tsw-border: #444;
  --tsw-panel: #1b1b1b; }
.tsw-head { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px;
  margin-bottom: 4px; min-height: 22px; }
.tsw-title { font-weight: 600; font-size: 13px; white-space: nowrap; }
.tsw-badge { padding: 1px 6px; border-radius: 9px; border: 1px solid var(--tsw-border); }
.tsw-badge:empty { display: none; }
.tsw-preview { background: #f0ad4e; color: #222; padding: 1px 6px; border-radius: 9px;
  font-weight: 600; }
.tsw-count { color: var(--tsw-muted); margin-left: auto; }
.tsw-tools button { font: inherit; color: var(--tsw-fg); background: var(--tsw-panel);
  border: 1px solid var(--tsw-border); border-radius: 3px; padding: 1px 6px; cursor: pointer; }
.tsw-tools button.tsw-on { outline: 2px solid #1f77b4; }
.tsw-body { display: flex; gap: 8px; align-items: flex-start; }
.tsw-plot { position: relative; flex: none; }
.tsw-plot canvas { display: block; }
.tsw-tip { position: absolute; pointer-events: none; z-index: 10; background: var(--tsw-panel);
  color: var(--tsw-fg); border: 1px solid var(--tsw-border); border-radius: 4px; padding: 4px 6px;
  box-shadow: 0 2px 6px rgba(0,0,0,.25); max-width: 260px; display: none; }
.tsw-tip img { display: block; image-rendering: pixelated; width: 64px; height: 64px;
  margin-top: 4px; }
.tsw-tip table { border-collapse: collapse; } .tsw-tip td { padding: 0 4px 0 0; }
.tsw-legend { max-height: 420px; overflow-y: auto; overflow-x: hidden; width: 122px; flex: none; }
.tsw-legend-name { overflow: hidden; text-overflow: ellipsis; }
/* Narrow widgets (comparison panels, split views): the legend wraps under the plot. */
.tsw-below .tsw-body { flex-direction: column; gap: 4px; }
.tsw-below .tsw-legend { display: flex; flex-wrap: wrap; gap: 0 8px; width: auto;
  max-height: 90px; }
.tsw-legend-item { display: flex; align-items: center; gap: 5px; cursor: pointer;
  padding: 1px 2px; user-select: none; white-space: nowrap; }
.tsw-legend-item.tsw-off { opacity: 0.35; text-decoration: line-through; }
.tsw-swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
.tsw-cbar { width: 14px; height: 160px; border: 1px solid var(--tsw-border); }
.tsw-cbar-wrap { display: flex; gap: 4px; align-items: stretch; }
.tsw-cbar-labels { display: flex; flex-direction: column; justify-content: space-between; }
`;

function ensureStyle() {
  if (document.getElementById("tsw-scatter-style")) return;
  const s = document.createElement("style");
  s.id = "tsw-scatter-style";
  s.textContent = CSS;
  document.head.appendChild(s);
}

function isDarkTheme(el, pref) {
  if (pref === "dark") return true;
  if (pref === "light") return false;
  const b = document.body;
  if (b && b.dataset.jpThemeLight !== undefined) return b.dataset.jpThemeLight === "false";
  const bg = getComputedStyle(el).getPropertyValue("--jp-layout-color0").trim();
  if (bg) {
    const m = bg.match(/^#([0-9a-f]{6})$/i);
    if (m) {
      const v = parseInt(m[1], 16);
      return ((v >> 16) & 255) + ((v >> 8) & 255) + (v & 255) < 3 * 128;
    }
  }
  return window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)").matches : false;
}

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el }) {
  ensureStyle();
  const root = h("div", "tsw-scatter");
  const head = h("div", "tsw-head");
  const title = h("span", "tsw-title");
  const badge = h("span", "tsw-badge");
  const preview = h("span", "tsw-preview", "preview");
  const tools = h("span", "tsw-tools");
  const panBtn = h("button", "tsw-pan", "pan");
  const lassoBtn = h("button", "tsw-lasso", "lasso");
  const resetBtn = h("button", "tsw-reset", "reset view");
  const pngBtn = h("button", "tsw-png", "PNG");
  panBtn.title = "Pan and zoom (hold shift to lasso)";
  lassoBtn.title = "Drag to select points";
  pngBtn.title = "Download the plot as PNG";
  tools.append(panBtn, lassoBtn, resetBtn, pngBtn);
  const count = h("span", "tsw-count");
  head.append(title, badge, preview, tools, count);
  const body = h("div", "tsw-body");
  const plot = h("div", "tsw-plot");
  const canvas = h("canvas", "tsw-canvas");
  const tip = h("div", "tsw-tip");
  plot.append(canvas, tip);
  const legend = h("div", "tsw-legend");
  body.append(plot, legend);
  root.append(head, body);
  el.appendChild(root);
  el.classList.add("tsw-scatter-host");
  el.dataset.frame = "-1";
  el.dataset.draws = "0";

  // Keep JupyterLab from starting a text selection or cell drag on plot interactions, while
  // letting regl-scatterplot's own (mouse) listeners on the canvas run first.
  for (const type of ["pointerdown", "mousedown", "click", "dblclick", "wheel"]) {
    plot.addEventListener(type, (e) => e.stopPropagation());
  }

  // One renderer per view, drawing offscreen at the plot's size; regl-scatterplot copies each
  // frame into `canvas`. (Drawing into a WebGL canvas in the page instead was measured slower
  // with software WebGL: the compositor's read-back costs more than the 2D copy.)
  const glCanvas = document.createElement("canvas");
  // Our own context attributes (regl-scatterplot then reuses this context): no multisampling,
  // since the points are drawn into a float framebuffer and only the final full-screen pass
  // would be smoothed, and no preserved buffer, since each frame is copied out at once.
  // Measured 10% less draw time per 60k-point frame with software WebGL. No depth or stencil
  // buffer either: regl-scatterplot never tests depth, and one less buffer to clear per frame.
  glCanvas.getContext("webgl", {
    antialias: false, preserveDrawingBuffer: false, depth: false, stencil: false,
  });
  const renderer = createRenderer({ regl: createRegl(glCanvas), canvas: glCanvas });
  let width = 0;
  let height = 0;

  // An explicit `width` is the plot's width; width 0 fills the widget's own width (the
  // output area, a grid cell, a flex share), with the legend beside the plot, or under it
  // where that would leave the plot narrower than LEGEND_BELOW px.
  const SIDE_LEGEND = 130; // .tsw-legend width + the body's gap
  const FRAME = 14; // .tsw-scatter padding and border
  const LEGEND_BELOW = 360;
  function applySize() {
    const explicit = model.get("width");
    const total = Math.min(el.clientWidth || 660, 1100);
    const hasLegend = model.get("_label_kind") !== "none";
    const below = !explicit && hasLegend && total - SIDE_LEGEND - FRAME < LEGEND_BELOW;
    root.classList.toggle("tsw-below", below);
    const side = hasLegend && !below ? SIDE_LEGEND : 0;
    const w = explicit || Math.max(160, total - side - FRAME);
    const hh = model.get("height") || 450;
    // A followed width ignores tiny changes (a widget sized by its content must not creep a
    // few px per frame); an explicit one is taken exactly.
    const same = explicit ? w === width : Math.abs(w - width) < 8;
    if (same && hh === height) return false;
    width = w;
    height = hh;
    canvas.style.width = `${w}px`;
    canvas.style.height = `${hh}px`;
    canvas.width = Math.round(w * window.devicePixelRatio);
    canvas.height = Math.round(hh * window.devicePixelRatio);
    renderer.resize(w, hh);
    renderer.refresh();
    return true;
  }
  applySize();

  const sp = createScatterplot({
    renderer,
    canvas,
    width,
    height,
    lassoType: "rectangle",
    lassoOnLongPress: false,
    lassoInitiator: false,
    deselectOnDblClick: true,
    deselectOnEscape: true,
    showReticle: false,
    pointSizeSelected: 2,
    pointOutlineWidth: 1,
  });

  // ---------------------------------------------------------------- point buffers
  let n = 0;
  let buf = new Float32Array(0); // interleaved x, y, z (colour value), w
  let pts = []; // n subarray views on buf, rebuilt only when n changes
  let norm = { cx: 0, cy: 0, s: 1 }; // data -> [-1, 1]: (v - c) * s
  let staleIndex = false;
  let indexBuf = null;
  let drawing = false;
  let dirty = null; // {positions, frame, animate}
  let destroyed = false;
  let hidden = new Set();
  let wasFiltered = false;

  function resizeBuffers(m) {
    if (m === n && pts.length === n) return false;
    n = m;
    buf = new Float32Array(4 * n);
    pts = new Array(n);
    for (let i = 0; i < n; i++) pts[i] = buf.subarray(4 * i, 4 * i + 4);
    indexBuf = null;
    return true;
  }

  function fillPositions() {
    const xy = typed(model.get("_xy"), Float32Array);
    const m = Math.floor(xy.length / 2);
    const grew = resizeBuffers(m);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < m; i++) {
      const x = xy[i], y = xy[m + i];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    if (!(x1 >= x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }
    // regl-scatterplot shows y in [-1, 1] and x in [-w/h, w/h]: fit the data box to both,
    // so that tall or narrow plots do not cut points off at the sides.
    const aspect = width / height || 1;
    const span = Math.max((x1 - x0) / aspect, y1 - y0) || 1;
    norm = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: 1.9 / span };
    for (let i = 0; i < m; i++) {
      buf[4 * i] = (xy[i] - norm.cx) * norm.s;
      buf[4 * i + 1] = (xy[m + i] - norm.cy) * norm.s;
    }
    return grew;
  }

  function fillColours() {
    const kind = model.get("_label_kind");
    if (kind === "categorical") {
      const Type = model.get("_label_dtype") === "uint16" ? Uint16Array : Uint8Array;
      const codes = typed(model.get("_labels"), Type);
      for (let i = 0; i < n; i++) buf[4 * i + 2] = codes[i] || 0;
    } else if (kind === "continuous") {
      const vals = typed(model.get("_labels"), Float32Array);
      const [lo, hi] = model.get("_value_range");
      const d = hi - lo || 1;
      for (let i = 0; i < n; i++) buf[4 * i + 2] = Math.min(1, Math.max(0, (vals[i] - lo) / d));
    } else {
      for (let i = 0; i < n; i++) buf[4 * i + 2] = 0;
    }
  }

  function applyStyle() {
    const kind = model.get("_label_kind");
    const dark = isDarkTheme(el, model.get("theme"));
    root.classList.toggle("tsw-dark", dark);
    const props = {
      backgroundColor: dark ? [0.07, 0.07, 0.07, 1] : [1, 1, 1, 1],
      pointSize: model.get("point_size"),
      opacity: model.get("opacity"),
      pointColorActive: dark ? "#ffffff" : "#000000",
      lassoColor: dark ? "#dddddd" : "#333333",
    };
    if (kind === "categorical") {
      props.colorBy = "valueA";
      props.pointColor = model.get("_colors").length ? model.get("_colors") : ["#1f77b4"];
    } else if (kind === "continuous") {
      props.colorBy = "valueA";
      props.pointColor = VIRIDIS_256;
    } else {
      props.colorBy = null;
      props.pointColor = dark ? "#6baed6" : "#1f77b4";
    }
    sp.set(props);
  }

  function visibleIndices() {
    if (!hidden.size || model.get("_label_kind") !== "categorical") return undefined;
    const out = [];
    for (let i = 0; i < n; i++) if (!hidden.has(buf[4 * i + 2])) out.push(i);
    return out;
  }

  function selectionArray() {
    const s = typed(model.get("_selection"), Uint32Array);
    return Array.from(s).filter((i) => i < n);
  }

  // Python's flow control sends the next frame once this one is acknowledged as drawn.
  let unacked = null;
  let drawStart = 0;
  function frameDrawn(frame) {
    el.dataset.drawMs = (performance.now() - drawStart).toFixed(1);
    el.dataset.frame = String(frame);
    if (!destroyed) model.send({ type: "ack", frame });
  }
  sp.subscribe("drawing", () => {
    if (unacked === null) return;
    const frame = unacked;
    unacked = null;
    frameDrawn(frame);
  });

  // One draw at a time; while one runs, later requests collapse into one (the newest wins).
  function requestDraw(req) {
    dirty = dirty ? { ...dirty, ...req, positions: dirty.positions || req.positions } : req;
    if (!drawing) pump();
  }

  async function pump() {
    drawing = true;
    while (dirty && !destroyed) {
      const req = dirty;
      dirty = null;
      let sizeChanged = false;
      if (req.positions) sizeChanged = fillPositions();
      fillColours();
      const opts = {
        zDataType: model.get("_label_kind") === "continuous" ? "continuous" : "categorical",
        select: selectionArray(),
        // Same points, new positions: skip regl-scatterplot's per-draw rebuild of the point
        // index buffer (it allocates per point); the filter is passed explicitly instead.
        preventFilterReset: !sizeChanged && n > 0 && !(wasFiltered && !visibleIndices()),
      };
      const vis = visibleIndices();
      if (vis) opts.filter = vis;
      wasFiltered = !!vis;
      if (req.index) {
        opts.spatialIndex = req.index;
      } else if (req.positions && !sizeChanged && indexBuf && !req.buildIndex) {
        opts.spatialIndex = indexBuf; // stale but valid; rebuilt when the pointer comes in
        staleIndex = true;
      } else {
        staleIndex = false;
      }
      if (req.animate && !sizeChanged && el.dataset.draws !== "0") {
        opts.transition = true;
        opts.transitionDuration = 120;
      }
      drawStart = performance.now();
      // A frame without a transition is on the canvas at the first render after this call
      // (regl-scatterplot sets the points in microtasks, renders in the next animation
      // frame): its 'drawing' handler acknowledges it there. That is up to a frame's worth
      // of page work (commit, timers) earlier than the 'draw' event that resolves draw().
      unacked = req.frame !== undefined && !opts.transition ? req.frame : null;
      try {
        await sp.draw(pts, opts);
        if (!opts.spatialIndex) indexBuf = sp.get("spatialIndex");
        if (req.index) indexBuf = req.index;
      } catch (err) {
        console.error("tsimcne-widgets scatter draw failed", err);
      }
      el.dataset.draws = String(Number(el.dataset.draws) + 1);
      updateCount();
      // Transitions end with draw()'s promise; a failed draw is acknowledged too, so that
      // the stream goes on.
      if (req.frame !== undefined && (opts.transition || unacked === req.frame)) {
        frameDrawn(req.frame);
      }
      unacked = null;
    }
    drawing = false;
  }

  function ensureIndex() {
    if (!staleIndex || destroyed) return;
    staleIndex = false;
    createSpatialIndex(pts, false).then((index) => {
      if (!destroyed) requestDraw({ index, buildIndex: true });
    });
  }
  plot.addEventListener("pointerenter", ensureIndex);
  plot.addEventListener("pointermove", ensureIndex);
  plot.addEventListener("pointerdown", ensureIndex, true);

  // ---------------------------------------------------------------- header, legend, counter
  function updateHeader() {
    title.textContent = model.get("title") || "";
    badge.textContent = model.get("badge") || "";
    preview.style.display = model.get("frame_kind") === "preview" ? "" : "none";
    preview.title = "Stage-1 preview: a 2D PCA of the 128-D output, not the final embedding";
  }

  function updateCount() {
    const sel = typed(model.get("_selection"), Uint32Array).length;
    const vis = visibleIndices();
    const shown = vis ? vis.length : n;
    let t = `${n.toLocaleString()} points`;
    if (shown !== n) t += ` (${shown.toLocaleString()} shown)`;
    if (sel) t += ` · ${sel.toLocaleString()} selected`;
    count.textContent = t;
  }

  function updateLegend() {
    legend.replaceChildren();
    const kind = model.get("_label_kind");
    legend.style.display = kind === "none" ? "none" : "";
    if (kind === "categorical") {
      const names = model.get("_categories");
      const colors = model.get("_colors");
      hidden = new Set(model.get("hidden"));
      names.forEach((name, k) => {
        const item = h("div", "tsw-legend-item");
        item.dataset.code = String(k);
        if (hidden.has(k)) item.classList.add("tsw-off");
        const sw = h("span", "tsw-swatch");
        sw.style.background = colors[k % colors.length];
        item.append(sw, h("span", "tsw-legend-name", name));
        item.title = `${name}: click to hide or show`;
        item.addEventListener("click", () => {
          const now = new Set(model.get("hidden"));
          if (now.has(k)) now.delete(k); else now.add(k);
          model.set("hidden", Array.from(now).sort((a, b) => a - b));
          model.save_changes();
        });
        legend.append(item);
      });
    } else if (kind === "continuous") {
      const [lo, hi] = model.get("_value_range");
      const wrap = h("div", "tsw-cbar-wrap");
      const bar = h("div", "tsw-cbar");
      bar.style.background = `linear-gradient(to top, ${VIRIDIS_256.filter((_, i) => i % 16 === 0 || i === 255).join(",")})`;
      const labs = h("div", "tsw-cbar-labels");
      labs.append(h("span", "", fmt(hi)), h("span", "", fmt((lo + hi) / 2)), h("span", "", fmt(lo)));
      wrap.append(bar, labs);
      const name = model.get("_categories")[0];
      if (name) legend.append(h("div", "tsw-cbar-title", name));
      legend.append(wrap);
    }
  }
  function fmt(v) {
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : String(+v.toFixed(3));
  }

  function updateMode() {
    const lasso = model.get("mouse_mode") === "lasso";
    sp.set({ mouseMode: lasso ? "lasso" : "panZoom" });
    lassoBtn.classList.toggle("tsw-on", lasso);
    panBtn.classList.toggle("tsw-on", !lasso);
    canvas.style.cursor = lasso ? "crosshair" : "default";
  }
  panBtn.addEventListener("click", () => { model.set("mouse_mode", "pan"); model.save_changes(); });
  lassoBtn.addEventListener("click", () => { model.set("mouse_mode", "lasso"); model.save_changes(); });
  resetBtn.addEventListener("click", () => sp.reset());
  pngBtn.addEventListener("click", () => {
    const a = document.createElement("a");
    a.download = (model.get("title") || "embedding").replace(/[^\w.-]+/g, "_") + ".png";
    a.href = canvas.toDataURL("image/png");
    a.click();
  });

  // ---------------------------------------------------------------- selection
  let settingSelection = false;
  sp.subscribe("select", ({ points }) => {
    if (settingSelection) return;
    model.set("_selection", u32Bytes(points));
    model.save_changes();
    updateCount();
  });
  sp.subscribe("deselect", () => {
    if (settingSelection) return;
    model.set("_selection", new DataView(new ArrayBuffer(0)));
    model.save_changes();
    updateCount();
  });
  sp.subscribe("lassoEnd", ({ coordinates }) => {
    // The lasso polygon in data coordinates (GL space is the normalised [-1, 1] space).
    const flat = [];
    for (const [gx, gy] of coordinates) flat.push(gx / norm.s + norm.cx, gy / norm.s + norm.cy);
    model.set("lasso", flat);
    model.save_changes();
  });
  function onSelectionFromPython() {
    settingSelection = true;
    try {
      const s = selectionArray();
      if (s.length) sp.select(s, { preventEvent: true });
      else sp.deselect({ preventEvent: true });
    } finally {
      settingSelection = false;
    }
    updateCount();
  }

  // ---------------------------------------------------------------- hover tooltip
  let hovered = -1;
  let lastMouse = [0, 0];
  plot.addEventListener("mousemove", (e) => {
    const r = plot.getBoundingClientRect();
    lastMouse = [e.clientX - r.left, e.clientY - r.top];
    if (hovered >= 0) placeTip();
  });
  function placeTip() {
    const [x, y] = lastMouse;
    tip.style.left = `${Math.min(x + 14, Math.max(0, width - 200))}px`;
    tip.style.top = `${y + 14 > height - 120 ? Math.max(0, y - 130) : y + 14}px`;
  }
  sp.subscribe("pointOver", (i) => {
    hovered = i;
    tip.replaceChildren();
    const kind = model.get("_label_kind");
    tip.append(h("div", "tsw-tip-index", `#${i}`));
    if (kind === "categorical") {
      const names = model.get("_categories");
      const code = buf[4 * i + 2];
      tip.append(h("div", "tsw-tip-label", names[code] ?? String(code)));
    }
    tip.style.display = "block";
    placeTip();
    model.send({ type: "hover", index: i });
  });
  sp.subscribe("pointOut", () => {
    hovered = -1;
    tip.style.display = "none";
    model.send({ type: "hover_out" });
  });
  // Points highlighted from Python (e.g. hovered in a linked panel or clicked in a gallery).
  function onHighlight() {
    const ids = model.get("highlight") || [];
    el.dataset.highlight = ids.join(",");
    try {
      sp.hover(ids.length ? ids[0] : -1, { showReticleOnce: ids.length > 0, preventEvent: true });
    } catch (_) { /* point not drawn yet */ }
  }
  function onCustom(msg) {
    if (!msg || msg.type !== "tip" || msg.index !== hovered) return;
    // `html` is built by Python with every user-provided string escaped.
    tip.innerHTML = msg.html;
    if (msg.img) {
      const img = document.createElement("img");
      img.className = "tsw-thumb";
      img.alt = `image ${msg.index}`;
      img.src = msg.img;
      tip.append(img);
    }
    placeTip();
  }
  model.on("msg:custom", onCustom);

  // ---------------------------------------------------------------- model listeners
  const onFrame = () => requestDraw({ positions: true, frame: model.get("_frame"), animate: model.get("_animate") });
  const onColours = () => { applyStyle(); updateLegend(); onSize(); requestDraw({ positions: true }); };
  const onStyle = () => { applyStyle(); requestDraw({}); };
  const onHidden = () => { updateLegend(); requestDraw({}); };
  // Positions are refitted: their normalisation depends on the plot's aspect ratio.
  const onSize = () => { if (applySize()) { sp.set({ width, height }); requestDraw({ positions: true }); } };
  const listeners = [
    ["change:_frame", onFrame],
    ["change:_labels change:_colors change:_categories change:_label_kind change:_value_range", onColours],
    ["change:point_size change:opacity change:theme", onStyle],
    ["change:hidden", onHidden],
    ["change:_selection", onSelectionFromPython],
    ["change:title change:badge change:frame_kind", updateHeader],
    ["change:mouse_mode", updateMode],
    ["change:highlight", onHighlight],
    ["change:height change:width", onSize],
  ];
  for (const [ev, fn] of listeners) model.on(ev, fn);

  // Follow the output area's width when no width is given.
  const sizeObserver = new ResizeObserver(() => { if (!model.get("width")) onSize(); });
  sizeObserver.observe(el);

  // Follow JupyterLab's theme switches.
  const themeObserver = new MutationObserver(() => { applyStyle(); requestDraw({}); });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  updateHeader();
  updateMode();
  applyStyle();
  updateLegend();
  requestDraw({ positions: true, frame: model.get("_frame") });
  model.send({ type: "rendered" });

  return () => {
    destroyed = true;
    for (const [ev, fn] of listeners) model.off(ev, fn);
    model.off("msg:custom", onCustom);
    themeObserver.disconnect();
    sizeObserver.disconnect();
    try { sp.destroy(); } catch (_) { /* already gone */ }
    try { renderer.destroy(); } catch (_) { /* already gone */ }
  };
}

export default { render };
