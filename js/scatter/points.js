// The point buffer handed to regl-scatterplot, filled from the binary traits.
//
// `_xy` is float32 bytes interleaved x0, y0, x1, y1, ... It arrives as a DataView; it is
// read through a Float32Array view (no copy) and normalised straight into ONE interleaved
// Float32Array (x, y, colour value, unused). The per-point array handed to
// regl-scatterplot holds subarray views on that buffer, built once per point count, never
// per frame.
import { typed } from "./util.js";

export function createPoints(ctx) {
  const { model } = ctx;
  // buf: interleaved x, y, z (colour value), w; pts: n subarray views on buf;
  // norm: data -> [-1, 1] is (v - c) * s.
  const P = { n: 0, buf: new Float32Array(0), pts: [], norm: { cx: 0, cy: 0, s: 1 } };
  ctx.points = P;

  function resizeBuffers(m) {
    if (m === P.n && P.pts.length === P.n) return false;
    P.n = m;
    P.buf = new Float32Array(4 * m);
    P.pts = new Array(m);
    for (let i = 0; i < m; i++) P.pts[i] = P.buf.subarray(4 * i, 4 * i + 4);
    return true;
  }

  // Writes normalised positions; true when the number of points changed.
  function fillPositions() {
    const xy = typed(model.get("_xy"), Float32Array);
    const m = Math.floor(xy.length / 2);
    const grew = resizeBuffers(m);
    const buf = P.buf;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < 2 * m; i += 2) {
      const x = xy[i], y = xy[i + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    if (!(x1 >= x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }
    // regl-scatterplot shows y in [-1, 1] and x in [-w/h, w/h]: fit the data box to both,
    // so that tall or narrow plots do not cut points off at the sides.
    const aspect = ctx.size.width / ctx.size.height || 1;
    const span = Math.max((x1 - x0) / aspect, y1 - y0) || 1;
    const norm = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: 1.9 / span };
    P.norm = norm;
    for (let i = 0; i < m; i++) {
      buf[4 * i] = (xy[2 * i] - norm.cx) * norm.s;
      buf[4 * i + 1] = (xy[2 * i + 1] - norm.cy) * norm.s;
    }
    return grew;
  }

  function fillColours() {
    const kind = model.get("_label_kind");
    const { n, buf } = P;
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

  // Indices of the points not in a hidden class; undefined when none is hidden.
  function visibleIndices() {
    const { n, buf } = P;
    if (!ctx.hidden.size || model.get("_label_kind") !== "categorical") return undefined;
    const out = [];
    for (let i = 0; i < n; i++) if (!ctx.hidden.has(buf[4 * i + 2])) out.push(i);
    return out;
  }

  function selectionArray() {
    const s = typed(model.get("_selection"), Uint32Array);
    return Array.from(s).filter((i) => i < P.n);
  }

  // The data coordinates of a point in GL space (the normalised [-1, 1] space).
  function glToData(gx, gy) {
    return [gx / P.norm.s + P.norm.cx, gy / P.norm.s + P.norm.cy];
  }

  return { fillPositions, fillColours, visibleIndices, selectionArray, glToData };
}
