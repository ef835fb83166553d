// Selection both ways: lasso and box selections go to Python as uint32 bytes (and the
// lasso polygon in data coordinates); a selection set in Python is shown here.
import { u32Bytes } from "./util.js";

export function createSelection(ctx, points, updateCount) {
  const { model, sp } = ctx;
  let settingSelection = false; // our own sp.select(): not an echo back to Python

  sp.subscribe("select", ({ points: chosen }) => {
    if (settingSelection) return;
    model.set("_selection", u32Bytes(chosen));
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
    for (const [gx, gy] of coordinates) flat.push(...points.glToData(gx, gy));
    model.set("lasso", flat);
    model.save_changes();
  });

  function onSelectionFromPython() {
    settingSelection = true;
    try {
      const s = points.selectionArray();
      if (s.length) sp.select(s, { preventEvent: true });
      else sp.deselect({ preventEvent: true });
    } finally {
      settingSelection = false;
    }
    updateCount();
  }

  return { onSelectionFromPython };
}
