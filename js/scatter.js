// EmbeddingScatter front end: regl-scatterplot (WebGL) fed from binary buffers.
//
// This entry wires the modules under ./scatter/ to the model:
//   dom.js (elements), layout.js (sizes), plot.js (renderer, regl-scatterplot),
//   points.js (`_xy` and labels into the point buffer), draw.js (draw loop, frame
//   acknowledgement, spatial index), style.js (colours, theme), axes.js (view, axes),
//   legend.js (legend, colour bar, counter), toolbar.js (header, mouse modes),
//   selection.js (selection both ways), tooltip.js (hover tooltip, highlight).
// Shared state lives on one `ctx` object; each module owns the fields it sets.
// The styles are ./scatter/scatter.css, which esbuild writes to static/scatter.css for
// anywidget's _css.
import "./scatter/scatter.css";
import { createAxes } from "./scatter/axes.js";
import { buildDom } from "./scatter/dom.js";
import { createDrawLoop } from "./scatter/draw.js";
import { applySize } from "./scatter/layout.js";
import { createLegend } from "./scatter/legend.js";
import { createPlot } from "./scatter/plot.js";
import { createPoints } from "./scatter/points.js";
import { createSelection } from "./scatter/selection.js";
import { applyStyle } from "./scatter/style.js";
import { createToolbar } from "./scatter/toolbar.js";
import { createTooltip } from "./scatter/tooltip.js";

function render({ model, el }) {
  const ctx = {
    model,
    el,
    ui: buildDom(el),
    size: { width: 0, height: 0, axesOn: null }, // layout.js
    hidden: new Set(), // hidden class codes; legend.js
    destroyed: false,
  };
  createPlot(ctx); // ctx.renderer, ctx.sp
  const { sp, renderer } = ctx;
  const points = createPoints(ctx); // ctx.points
  const legend = createLegend(ctx, points);
  const { requestDraw } = createDrawLoop(ctx, points, legend.updateCount);
  createAxes(ctx, points);
  const toolbar = createToolbar(ctx);
  const selection = createSelection(ctx, points, legend.updateCount);
  const tooltip = createTooltip(ctx);
  model.on("msg:custom", tooltip.onCustom);

  const style = () => applyStyle(ctx);
  const onFrame = () => requestDraw({
    positions: true, frame: model.get("_frame"), animate: model.get("_animate"),
  });
  // Positions are refitted: their normalisation depends on the plot's aspect ratio.
  const onSize = () => {
    if (!applySize(ctx)) return;
    sp.set({ width: ctx.size.width, height: ctx.size.height });
    legend.layoutLegend();
    requestDraw({ positions: true });
  };
  const onColours = () => { style(); legend.updateLegend(); onSize(); requestDraw({ positions: true }); };
  const onStyle = () => { style(); requestDraw({}); };
  const onHidden = () => { legend.updateLegend(); requestDraw({}); };
  const listeners = [
    ["change:_frame", onFrame],
    ["change:_labels change:_colors change:_categories change:_label_kind change:_value_range", onColours],
    ["change:point_size change:opacity change:theme", onStyle],
    ["change:hidden", onHidden],
    ["change:_selection", selection.onSelectionFromPython],
    ["change:title change:badge change:frame_kind change:placeholder", toolbar.updateHeader],
    ["change:mouse_mode", toolbar.updateMode],
    ["change:highlight", tooltip.onHighlight],
    ["change:height change:width change:axes", onSize],
  ];
  for (const [ev, fn] of listeners) model.on(ev, fn);

  // Follow the output area's width when no width is given.
  const sizeObserver = new ResizeObserver(() => { if (!model.get("width")) onSize(); });
  sizeObserver.observe(el);
  // Follow JupyterLab's theme switches.
  const themeObserver = new MutationObserver(onStyle);
  themeObserver.observe(document.body, {
    attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"],
  });

  toolbar.updateHeader();
  toolbar.updateMode();
  style();
  legend.updateLegend();
  requestDraw({ positions: true, frame: model.get("_frame") });
  model.send({ type: "rendered" });

  return () => {
    ctx.destroyed = true;
    for (const [ev, fn] of listeners) model.off(ev, fn);
    model.off("msg:custom", tooltip.onCustom);
    themeObserver.disconnect();
    sizeObserver.disconnect();
    tooltip.dispose();
    try { sp.destroy(); } catch (_) { /* already gone */ }
    try { renderer.destroy(); } catch (_) { /* already gone */ }
  };
}

export default { render };
