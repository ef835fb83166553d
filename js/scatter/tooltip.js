// The hover tooltip: a placeholder at once (index and class), then Python's reply with
// the metadata and the thumbnail. Also the reticle on points highlighted from Python.
import { h, typed } from "./util.js";

export function createTooltip(ctx) {
  const { model, sp, ui } = ctx;
  const tip = ui.tip;
  let hovered = -1;
  let lastMouse = [0, 0];
  // No tooltip while a button is down (panning or drawing a lasso): it would cover the
  // points being selected.
  let dragging = false;

  function placeTip() {
    const [x, y] = lastMouse;
    const { width, height } = ctx.size;
    tip.style.left = `${Math.min(x + 14, Math.max(0, width - 200))}px`;
    tip.style.top = `${y + 14 > height - 120 ? Math.max(0, y - 130) : y + 14}px`;
  }
  function hideTip() {
    if (hovered < 0 && tip.style.display === "none") return;
    hovered = -1;
    tip.style.display = "none";
    model.send({ type: "hover_out" });
  }
  // The point's index in the user's data, as Python's tooltip shows it: while a run shows
  // a subsample, `_orig_index` maps shown points to it.
  function originalIndex(i) {
    const orig = typed(model.get("_orig_index"), Uint32Array);
    return i < orig.length ? orig[i] : i;
  }

  ui.plot.addEventListener("mousemove", (e) => {
    const r = ui.plot.getBoundingClientRect();
    lastMouse = [e.clientX - r.left, e.clientY - r.top];
    if (hovered >= 0) placeTip();
  });
  ui.plot.addEventListener("pointerdown", () => { dragging = true; hideTip(); }, true);
  const onPointerUp = () => { dragging = false; };
  window.addEventListener("pointerup", onPointerUp, true);
  sp.subscribe("lassoStart", () => { dragging = true; hideTip(); });
  sp.subscribe("pointOver", (i) => {
    if (dragging) return;
    hovered = i;
    tip.replaceChildren(h("div", "tsw-tip-index", `#${originalIndex(i)}`));
    if (model.get("_label_kind") === "categorical") {
      const code = ctx.points.buf[4 * i + 2];
      tip.append(h("div", "tsw-tip-label", model.get("_categories")[code] ?? String(code)));
    }
    tip.style.display = "block";
    placeTip();
    model.send({ type: "hover", index: i });
  });
  sp.subscribe("pointOut", () => {
    if (dragging) return;
    hideTip();
  });

  // Points highlighted from Python (e.g. hovered in a linked panel or clicked in a gallery).
  function onHighlight() {
    const ids = model.get("highlight") || [];
    ctx.el.dataset.highlight = ids.join(",");
    try {
      sp.hover(ids.length ? ids[0] : -1, { showReticleOnce: ids.length > 0, preventEvent: true });
    } catch (_) { /* point not drawn yet */ }
  }

  function onCustom(msg) {
    if (!msg || msg.type !== "tip" || msg.index !== hovered) return;
    // `html` is built by Python with every user-provided string escaped.
    tip.innerHTML = msg.html;
    if (msg.img) {
      const img = document.createElement("img");
      img.className = "tsw-thumb";
      img.alt = `image ${originalIndex(msg.index)}`;
      img.src = msg.img;
      tip.append(img);
    }
    placeTip();
  }

  const dispose = () => window.removeEventListener("pointerup", onPointerUp, true);
  return { onHighlight, onCustom, dispose };
}
