// The widget's elements: header (title, toolbar, counter), plot (canvas, axes, overlays,
// tooltip) and legend. The styles are in scatter.css (anywidget's _css).
import { SVG, h } from "./util.js";

// Merge (add to the selection) is Ctrl, or Cmd on a Mac.
export const MERGE_KEY = /Mac|iPhone|iPad/.test(navigator.platform || "") ? "meta" : "ctrl";

export function buildDom(el) {
  const ui = {};
  ui.root = h("div", "tsw-scatter");
  const head = h("div", "tsw-head");
  ui.title = h("span", "tsw-title");
  ui.badge = h("span", "tsw-badge");
  ui.preview = h("span", "tsw-preview", "preview");
  const tools = h("span", "tsw-tools");
  // Mouse modes: one active at a time; modifier keys work in every mode.
  ui.panBtn = h("button", "tsw-pan", "pan");
  ui.lassoBtn = h("button", "tsw-lasso", "lasso");
  ui.boxBtn = h("button", "tsw-box", "box");
  ui.resetBtn = h("button", "tsw-reset", "reset");
  ui.pngBtn = h("button", "tsw-png", "PNG");
  const keys = `${MERGE_KEY === "meta" ? "Cmd" : "Ctrl"}+drag adds to the selection, `
    + "Alt+drag removes from it; double-click or Esc clears it.";
  ui.panBtn.title = "Pan: drag to pan, scroll to zoom. Shift+drag draws a freehand lasso. " + keys;
  ui.lassoBtn.title = "Lasso: drag a freehand outline around points to select them. " + keys;
  ui.boxBtn.title = "Box: drag a rectangle to select the points inside. " + keys;
  ui.resetBtn.title = "Reset the view";
  ui.pngBtn.title = "Download the plot as PNG";
  tools.append(ui.panBtn, ui.lassoBtn, ui.boxBtn, ui.resetBtn, ui.pngBtn);
  ui.count = h("span", "tsw-count");
  head.append(ui.title, tools, ui.count);
  const body = h("div", "tsw-body");
  ui.plot = h("div", "tsw-plot");
  ui.canvas = h("canvas", "tsw-canvas");
  ui.tip = h("div", "tsw-tip");
  // Badge and preview tag overlay the plot: a header that grows would move the plot down.
  ui.tags = h("div", "tsw-tags");
  ui.tags.append(ui.badge, ui.preview);
  ui.placeholder = h("div", "tsw-placeholder");
  ui.axesSvg = document.createElementNS(SVG, "svg");
  ui.axesSvg.setAttribute("class", "tsw-axes");
  ui.plot.append(ui.canvas, ui.axesSvg, ui.tags, ui.placeholder, ui.tip);
  ui.legend = h("div", "tsw-legend");
  body.append(ui.plot, ui.legend);
  ui.root.append(head, body);
  el.appendChild(ui.root);
  el.classList.add("tsw-scatter-host");
  el.dataset.frame = "-1";
  el.dataset.draws = "0";

  // Keep JupyterLab from starting a text selection or cell drag on plot interactions, while
  // letting regl-scatterplot's own (mouse) listeners on the canvas run first.
  for (const type of ["pointerdown", "mousedown", "click", "dblclick", "wheel"]) {
    ui.plot.addEventListener(type, (e) => e.stopPropagation());
  }
  return ui;
}
