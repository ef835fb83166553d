// The WebGL side: one offscreen renderer per view and the regl-scatterplot instance.
import createScatterplot, { createRegl, createRenderer } from "regl-scatterplot";
import { MERGE_KEY } from "./dom.js";
import { applySize } from "./layout.js";
import { DIM_OPACITY } from "./style.js";

// Sets ctx.renderer and ctx.sp, sized by applySize first.
export function createPlot(ctx) {
  // One renderer per view, drawing offscreen at the plot's size; regl-scatterplot copies each
  // frame into the visible canvas. (Drawing into a WebGL canvas in the page instead was
  // measured slower with software WebGL: the compositor's read-back costs more than the 2D
  // copy.)
  const glCanvas = document.createElement("canvas");
  // Our own context attributes (regl-scatterplot then reuses this context): no multisampling,
  // since the points are drawn into a float framebuffer and only the final full-screen pass
  // would be smoothed, and no preserved buffer, since each frame is copied out at once.
  // Measured 10% less draw time per 60k-point frame with software WebGL. No depth or stencil
  // buffer either: regl-scatterplot never tests depth, and one less buffer to clear per frame.
  glCanvas.getContext("webgl", {
    antialias: false, preserveDrawingBuffer: false, depth: false, stencil: false,
  });
  ctx.renderer = createRenderer({ regl: createRegl(glCanvas), canvas: glCanvas });
  applySize(ctx);
  const keyMap = { lasso: "shift", merge: MERGE_KEY, remove: "alt" };
  ctx.sp = createScatterplot({
    renderer: ctx.renderer,
    canvas: ctx.ui.canvas,
    width: ctx.size.width,
    height: ctx.size.height,
    lassoType: "freeform",
    lassoOnLongPress: false,
    lassoInitiator: false,
    // No rotation (its default key, Alt, is "remove from the selection" here, and axes
    // assume an unrotated view); merge is Ctrl (Cmd on a Mac).
    actionKeyMap: keyMap,
    deselectOnDblClick: true,
    deselectOnEscape: true,
    showReticle: false,
    pointSizeSelected: 2,
    pointOutlineWidth: 1,
    // A selection dims every other point, so that it stands out even in a dense cluster.
    opacityInactiveMax: DIM_OPACITY,
    opacityInactiveScale: 1,
  });
  ctx.sp.set({ actionKeyMap: { ...keyMap } });
}
