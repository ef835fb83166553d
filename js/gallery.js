// SelectionGallery: thumbnails of the selected images, a label under each; a click on a
// thumbnail reports its point index back to Python.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "tsw-gallery";
  const header = document.createElement("div");
  header.className = "tsw-gallery-header";
  const grid = document.createElement("div");
  grid.className = "tsw-gallery-grid";
  grid.style.cssText =
    "display:flex;flex-wrap:wrap;gap:4px;max-height:360px;overflow-y:auto;align-content:flex-start";
  root.append(header, grid);
  el.appendChild(root);
  let nonce = 0;

  const draw = () => {
    const items = model.get("items") || [];
    const total = model.get("total");
    header.textContent = total > items.length
      ? `${total} selected, showing the first ${items.length}`
      : `${total} selected`;
    const frag = document.createDocumentFragment();
    for (const it of items) {
      const fig = document.createElement("figure");
      fig.className = "tsw-thumb";
      fig.dataset.index = String(it.index);
      fig.style.cssText = "margin:0;text-align:center;cursor:pointer;font-size:11px;width:" +
        `${model.get("thumb_size") + 4}px`;
      const img = document.createElement("img");
      img.src = it.src;
      img.width = model.get("thumb_size");
      img.height = model.get("thumb_size");
      img.style.imageRendering = "pixelated";
      img.alt = it.label; // textContent / attributes: no HTML injection
      const cap = document.createElement("figcaption");
      cap.textContent = it.label;
      fig.append(img, cap);
      fig.addEventListener("click", () => {
        nonce += 1;
        model.set("clicked", [it.index, nonce]);
        model.save_changes();
      });
      frag.appendChild(fig);
    }
    grid.replaceChildren(frag);
    el.dataset.thumbs = String(items.length);
  };
  model.on("change:items", draw);
  model.on("change:total", draw);
  draw();
  return () => {
    model.off("change:items", draw);
    model.off("change:total", draw);
  };
}

export default { render };
