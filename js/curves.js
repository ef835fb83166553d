// Live training curves for TrainingMonitor: loss, learning rate and 2D kNN accuracy,
// drawn as SVG from float32 buffers, with stage boundaries marked.
//
// Colours come from CSS variables, not from values read once in JS: JupyterLab swaps
// its --jp-* variables when the theme changes, and the browser re-styles the SVG by
// itself, so the text stays legible after a switch to Dark (or back).

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 146;
const PANEL_W = 240;
// Gutters around each plot area: the title above, the y labels on the left, the x
// labels below. Lines are drawn in a nested <svg> (overflow hidden) that is exactly the
// plot area, so they never cross a label.
const GUTTER = { left: 52, right: 10, top: 20, bottom: 20 };
const PLOT_W = PANEL_W - GUTTER.left - GUTTER.right;
const PLOT_H = HEIGHT - GUTTER.top - GUTTER.bottom;

const STYLE = `
.tsw-curves {
  --tsw-fg: var(--jp-ui-font-color1, currentColor);
  --tsw-bg: var(--jp-layout-color0, transparent);
  --tsw-grid: var(--jp-border-color1, #9e9e9e);
  display: block;
  background: var(--tsw-bg);
}
.tsw-curves[data-theme="light"] { --tsw-fg: #212121; --tsw-bg: #ffffff; --tsw-grid: #9e9e9e; }
.tsw-curves[data-theme="dark"] { --tsw-fg: #e8e8e8; --tsw-bg: #111111; --tsw-grid: #757575; }
.tsw-curves text {
  fill: var(--tsw-fg);
  font: 11px var(--jp-ui-font-family, sans-serif);
}
.tsw-curves .tsw-frame { fill: none; stroke: var(--tsw-grid); }
.tsw-curves .tsw-bound { stroke: var(--tsw-grid); stroke-dasharray: 3 3; }
.tsw-curves .tsw-line { fill: none; stroke-width: 1.5; stroke-linejoin: round; }
`;

function f32(dv) {
  if (!dv || !dv.byteLength) return new Float32Array(0);
  return new Float32Array(dv.buffer, dv.byteOffset, dv.byteLength / 4);
}

function node(name, attrs, parent) {
  const n = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (parent) parent.appendChild(n);
  return n;
}

function label(parent, text, attrs) {
  const t = node("text", attrs, parent);
  t.textContent = text; // text, never markup
  return t;
}

function fmt(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(+v.toPrecision(3));
}

function panel(svg, i, spec, bounds, xmax) {
  const { title, xs, ys, color, yfix, cls } = spec;
  const x0 = i * PANEL_W + GUTTER.left;
  const y0 = GUTTER.top;
  const g = node("g", { class: `tsw-panel tsw-panel-${cls}` }, svg);
  label(g, title, { class: "tsw-title", x: x0, y: y0 - 6 });
  node("rect", { class: "tsw-frame", x: x0, y: y0, width: PLOT_W, height: PLOT_H }, g);
  label(g, "0", { class: "tsw-xlabel", x: x0, y: y0 + PLOT_H + 14 });
  label(g, `${xmax} steps`, { class: "tsw-xlabel", x: x0 + PLOT_W, y: y0 + PLOT_H + 14,
    "text-anchor": "end" });
  const plot = node("svg", { class: "tsw-plot", x: x0, y: y0, width: PLOT_W,
    height: PLOT_H, overflow: "hidden" }, g);
  for (const b of bounds) {
    const px = (b / xmax) * PLOT_W;
    node("line", { class: "tsw-bound", x1: px, x2: px, y1: 0, y2: PLOT_H }, plot);
  }
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < ys.length; k++) {
    if (Number.isFinite(ys[k])) { lo = Math.min(lo, ys[k]); hi = Math.max(hi, ys[k]); }
  }
  if (yfix) { lo = yfix[0]; hi = yfix[1]; }
  if (!xs.length || !Number.isFinite(lo)) return 0;
  if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
  label(g, fmt(hi), { class: "tsw-ylabel", x: x0 - 4, y: y0 + 9, "text-anchor": "end" });
  label(g, fmt(lo), { class: "tsw-ylabel", x: x0 - 4, y: y0 + PLOT_H,
    "text-anchor": "end" });
  let d = "", n = 0, pen = false;
  for (let k = 0; k < xs.length; k++) {
    if (!Number.isFinite(ys[k])) { pen = false; continue; }
    const px = (xs[k] / xmax) * PLOT_W;
    const py = PLOT_H - 3 - ((ys[k] - lo) / (hi - lo)) * (PLOT_H - 6);
    d += `${pen ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
    pen = true;
    n++;
  }
  if (d) node("path", { class: "tsw-line", d, stroke: color }, plot);
  return n;
}

function render({ model, el }) {
  const style = document.createElement("style");
  style.textContent = STYLE;
  el.appendChild(style);
  const svg = node("svg", { class: "tsw-curves", width: WIDTH, height: HEIGHT,
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
    "aria-label": "loss, learning rate and 2D kNN accuracy" });
  el.appendChild(svg);
  const draw = () => {
    const theme = model.get("theme") || "auto";
    if (theme === "auto") svg.removeAttribute("data-theme");
    else svg.setAttribute("data-theme", theme);
    svg.replaceChildren();
    const xmax = Math.max(1, model.get("total_steps"));
    const bounds = model.get("stage_bounds") || [];
    const ex = f32(model.get("epoch_steps"));
    const specs = [
      { title: "loss / epoch", xs: ex, ys: f32(model.get("loss")), color: "#1f77b4",
        cls: "loss" },
      { title: "learning rate", xs: ex, ys: f32(model.get("lr")), color: "#ff7f0e",
        cls: "lr" },
      { title: "2D kNN accuracy (k=15)", xs: f32(model.get("knn_steps")),
        ys: f32(model.get("knn")), color: "#2ca02c", yfix: [0, 1], cls: "knn" },
    ];
    let drawn = 0;
    specs.forEach((s, i) => { drawn += panel(svg, i, s, bounds, xmax); });
    el.dataset.points = String(drawn);
    el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
  };
  // One draw per message, however many traits it changed.
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; draw(); });
  };
  const names = ["loss", "lr", "epoch_steps", "knn", "knn_steps", "stage_bounds",
    "total_steps", "theme"];
  for (const n of names) model.on(`change:${n}`, schedule);
  draw();
  return () => { for (const n of names) model.off(`change:${n}`, schedule); };
}

export default { render };
