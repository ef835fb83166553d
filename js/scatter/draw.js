// Drawing and flow control. One draw at a time; requests made while one runs collapse into
// one (the newest wins). Every frame from Python is acknowledged with
// `model.send({type: "ack", frame})` once it is on the canvas: Python's flow control sends
// the next frame only then. The spatial index (needed only for lasso and hover) is rebuilt
// lazily: streamed frames reuse the previous one and mark it stale; the pointer entering
// the plot rebuilds it.
import { createSpatialIndex } from "regl-scatterplot";

export function createDrawLoop(ctx, points, onDrawn) {
  const { model, el, sp } = ctx;
  let drawing = false;
  let dirty = null; // the pending request: {positions, frame, animate, index, buildIndex}
  let indexBuf = null;
  let staleIndex = false;
  let wasFiltered = false;
  let unacked = null;
  let drawStart = 0;

  function frameDrawn(frame) {
    el.dataset.drawMs = (performance.now() - drawStart).toFixed(1);
    el.dataset.frame = String(frame);
    if (!ctx.destroyed) model.send({ type: "ack", frame });
  }
  sp.subscribe("drawing", () => {
    if (unacked === null) return;
    const frame = unacked;
    unacked = null;
    frameDrawn(frame);
  });

  function requestDraw(req) {
    dirty = dirty ? { ...dirty, ...req, positions: dirty.positions || req.positions } : req;
    if (!drawing) pump();
  }

  function drawOptions(req, sizeChanged) {
    const { n } = ctx.points;
    const vis = points.visibleIndices();
    const opts = {
      zDataType: model.get("_label_kind") === "continuous" ? "continuous" : "categorical",
      select: points.selectionArray(),
      // Same points, new positions: skip regl-scatterplot's per-draw rebuild of the point
      // index buffer (it allocates per point); the filter is passed explicitly instead.
      preventFilterReset: !sizeChanged && n > 0 && !(wasFiltered && !vis),
    };
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
    return opts;
  }

  async function pump() {
    drawing = true;
    while (dirty && !ctx.destroyed) {
      const req = dirty;
      dirty = null;
      const sizeChanged = req.positions ? points.fillPositions() : false;
      if (sizeChanged) indexBuf = null;
      points.fillColours();
      const opts = drawOptions(req, sizeChanged);
      drawStart = performance.now();
      // A frame without a transition is on the canvas at the first render after this call
      // (regl-scatterplot sets the points in microtasks, renders in the next animation
      // frame): its 'drawing' handler acknowledges it there. That is up to a frame's worth
      // of page work (commit, timers) earlier than the 'draw' event that resolves draw().
      unacked = req.frame !== undefined && !opts.transition ? req.frame : null;
      try {
        await sp.draw(ctx.points.pts, opts);
        if (!opts.spatialIndex) indexBuf = sp.get("spatialIndex");
        if (req.index) indexBuf = req.index;
      } catch (err) {
        console.error("tsimcne-widgets scatter draw failed", err);
      }
      el.dataset.draws = String(Number(el.dataset.draws) + 1);
      onDrawn();
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
    if (!staleIndex || ctx.destroyed) return;
    staleIndex = false;
    createSpatialIndex(ctx.points.pts, false).then((index) => {
      if (!ctx.destroyed) requestDraw({ index, buildIndex: true });
    });
  }
  ctx.ui.plot.addEventListener("pointerenter", ensureIndex);
  ctx.ui.plot.addEventListener("pointermove", ensureIndex);
  ctx.ui.plot.addEventListener("pointerdown", ensureIndex, true);

  return { requestDraw };
}
