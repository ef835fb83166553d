// The view in data coordinates (el.dataset.view) and, on request, x and y axes whose ticks
// follow pan and zoom.
import { AX_L } from "./layout.js";
import { svgEl } from "./util.js";

function niceTicks(lo, hi, target) {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return { ticks: [], digits: 0 };
  const raw = span / Math.max(1, target);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  const step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  const ticks = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) ticks.push(k * step);
  return { ticks, digits: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) };
}

export function createAxes(ctx, points) {
  const { el, sp, ui, size } = ctx;

  // Screen (px in the canvas) to data coordinates, as regl-scatterplot maps the mouse for
  // its lasso: NDC = projection * cameraView * gl, with projection = diag(height/width, 1);
  // then gl -> data undoes the normalisation of fillPositions.
  function screenToData(px, py) {
    const { width, height } = size;
    const v = sp.get("cameraView");
    const aspect = width / height || 1;
    const nx = (px / width) * 2 - 1;
    const ny = 1 - (py / height) * 2;
    const a = v[0] / aspect, b = v[4] / aspect, c = v[12] / aspect;
    const d = v[1], e = v[5], f = v[13];
    const det = a * e - b * d || 1;
    const gx = (e * (nx - c) - b * (ny - f)) / det;
    const gy = (-d * (nx - c) + a * (ny - f)) / det;
    return points.glToData(gx, gy);
  }

  function tickMarks(x0, x1, y0, y1) {
    const { width, height } = size;
    const parts = [
      svgEl("path", { d: `M${AX_L - 0.5},0V${height + 0.5}H${AX_L + width}`, fill: "none" }),
    ];
    const xt = niceTicks(x0, x1, Math.max(2, Math.round(width / 80)));
    for (const x of xt.ticks) {
      const px = AX_L + ((x - x0) / (x1 - x0)) * width;
      parts.push(svgEl("line", { x1: px, x2: px, y1: height, y2: height + 4 }));
      parts.push(svgEl("text", { x: px, y: height + 14, "text-anchor": "middle",
        class: "tsw-xtick" }, x.toFixed(xt.digits)));
    }
    const yt = niceTicks(y0, y1, Math.max(2, Math.round(height / 50)));
    for (const y of yt.ticks) {
      const py = ((y1 - y) / (y1 - y0)) * height;
      parts.push(svgEl("line", { x1: AX_L - 4, x2: AX_L, y1: py, y2: py }));
      parts.push(svgEl("text", { x: AX_L - 6, y: py + 3, "text-anchor": "end",
        class: "tsw-ytick" }, y.toFixed(yt.digits)));
    }
    return parts;
  }

  let viewKey = "";
  function updateView() {
    const { width, height, axesOn } = size;
    if (!width || !height) return;
    const [x0, y1] = screenToData(0, 0);
    const [x1, y0] = screenToData(width, height);
    const key = [x0, x1, y0, y1, width, height, axesOn].join(",");
    if (key === viewKey) return;
    viewKey = key;
    // The data range in view, left, right, bottom, top (used by tests and tools).
    el.dataset.view = [x0, x1, y0, y1].map((v) => v.toPrecision(8)).join(",");
    if (!axesOn) { ui.axesSvg.replaceChildren(); return; }
    ui.axesSvg.replaceChildren(...tickMarks(x0, x1, y0, y1));
  }
  sp.subscribe("drawing", updateView);
}
