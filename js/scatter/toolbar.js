// The header: title, badge, preview tag, placeholder text, and the toolbar's mouse modes,
// view reset and PNG download.

export function createToolbar(ctx) {
  const { model, sp, ui } = ctx;
  const modes = [[ui.panBtn, "pan"], [ui.lassoBtn, "lasso"], [ui.boxBtn, "box"]];

  function updateHeader() {
    ui.title.textContent = model.get("title") || "";
    ui.title.title = ui.title.textContent; // the whole title, when the header cuts it short
    ui.badge.textContent = model.get("badge") || "";
    ui.preview.style.display = model.get("frame_kind") === "preview" ? "" : "none";
    ui.preview.title = "Stage-1 preview: a 2D PCA of the 128-D output, not the final embedding";
    ui.placeholder.textContent = model.get("placeholder") || "";
  }

  function updateMode() {
    const mode = model.get("mouse_mode");
    // Box and lasso are regl-scatterplot's lasso mode with a rectangle or a freeform
    // outline; in pan mode, Shift+drag draws a freeform lasso.
    sp.set({
      mouseMode: mode === "pan" ? "panZoom" : "lasso",
      lassoType: mode === "box" ? "rectangle" : "freeform",
    });
    for (const [b, m] of modes) {
      b.classList.toggle("tsw-on", mode === m);
      b.setAttribute("aria-pressed", String(mode === m));
    }
    ui.canvas.style.cursor = mode === "pan" ? "default" : "crosshair";
  }

  for (const [b, m] of modes) {
    b.addEventListener("click", () => { model.set("mouse_mode", m); model.save_changes(); });
  }
  ui.resetBtn.addEventListener("click", () => sp.reset());
  ui.pngBtn.addEventListener("click", () => {
    const a = document.createElement("a");
    a.download = (model.get("title") || "embedding").replace(/[^\w.-]+/g, "_") + ".png";
    a.href = ui.canvas.toDataURL("image/png");
    a.click();
  });

  return { updateHeader, updateMode };
}
