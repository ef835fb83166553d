// Sizes: the plot follows the widget's width (or an explicit one), puts the legend beside
// or under the plot, and makes room for the axes inside the widget's own size.

// An explicit `width` is the plot's width; width 0 fills the widget's own width (the
// output area, a grid cell, a flex share), with the legend beside the plot, or under it
// where that would leave the plot narrower than LEGEND_BELOW px.
const SIDE_LEGEND = 130; // .tsw-legend width + the body's gap
const FRAME = 14; // .tsw-scatter padding and border
const LEGEND_BELOW = 360;
// With axes, tick labels take AX_L px on the left and AX_B px at the bottom of the plot
// area: the canvas shrinks by that much, so the widget keeps its size either way.
export const AX_L = 38;
export const AX_B = 18;

// Sets ctx.size ({width, height, axesOn}); true when it changed.
export function applySize(ctx) {
  const { model, el, ui, renderer, size } = ctx;
  const explicit = model.get("width");
  const total = Math.min(el.clientWidth || 660, 1100);
  const hasLegend = model.get("_label_kind") !== "none";
  const below = !explicit && hasLegend && total - SIDE_LEGEND - FRAME < LEGEND_BELOW;
  ui.root.classList.toggle("tsw-below", below);
  const side = hasLegend && !below ? SIDE_LEGEND : 0;
  const pw = explicit || Math.max(160, total - side - FRAME);
  const ph = model.get("height") || 450;
  const axes = !!model.get("axes");
  const w = axes ? Math.max(40, pw - AX_L) : pw;
  const hh = axes ? Math.max(40, ph - AX_B) : ph;
  // A followed width ignores tiny changes (a widget sized by its content must not creep a
  // few px per frame); an explicit one is taken exactly.
  const same = explicit || axes !== size.axesOn ? w === size.width : Math.abs(w - size.width) < 8;
  if (same && hh === size.height && axes === size.axesOn) return false;
  size.axesOn = axes;
  size.width = w;
  size.height = hh;
  ui.plot.classList.toggle("tsw-with-axes", axes);
  ui.plot.style.width = `${axes ? w + AX_L : w}px`;
  ui.plot.style.height = `${axes ? hh + AX_B : hh}px`;
  ui.tags.style.left = `${axes ? AX_L + 4 : 4}px`;
  ui.placeholder.style.left = `${axes ? AX_L : 0}px`;
  ui.placeholder.style.bottom = `${axes ? AX_B : 0}px`;
  ui.axesSvg.setAttribute("width", String(w + AX_L));
  ui.axesSvg.setAttribute("height", String(hh + AX_B));
  ui.axesSvg.style.display = axes ? "" : "none";
  ui.canvas.style.width = `${w}px`;
  ui.canvas.style.height = `${hh}px`;
  ui.canvas.width = Math.round(w * window.devicePixelRatio);
  ui.canvas.height = Math.round(hh * window.devicePixelRatio);
  renderer.resize(w, hh);
  renderer.refresh();
  return true;
}
