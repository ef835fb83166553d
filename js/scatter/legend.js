// The legend (click a class to hide or show it), the colour bar, and the point counter.
import { AX_L } from "./layout.js";
import { VIRIDIS_256 } from "./style.js";
import { fmt, h, typed } from "./util.js";

// Under the plot: a grid with as many columns as the longest name allows, balanced so
// that no row holds a lone last class (the flex-wrap it replaces often did).
function legendColumns(k, fit) {
  const cands = [];
  for (let c = Math.min(k, fit); c >= 2; c--) cands.push(c);
  if (fit + 1 <= k) cands.push(fit + 1); // a little narrower rather than a lone class
  for (const c of cands) {
    const rows = Math.ceil(k / c);
    const cols = Math.ceil(k / rows);
    if (rows === 1 || k - (rows - 1) * cols >= 2) return cols;
  }
  return 1;
}

function legendItem(model, name, k, color, off) {
  const item = h("div", "tsw-legend-item");
  item.dataset.code = String(k);
  if (off) item.classList.add("tsw-off");
  const sw = h("span", "tsw-swatch");
  sw.style.background = color;
  item.append(sw, h("span", "tsw-legend-name", name));
  item.title = `${name}: click to hide or show`;
  item.addEventListener("click", () => {
    const now = new Set(model.get("hidden"));
    if (now.has(k)) now.delete(k); else now.add(k);
    model.set("hidden", Array.from(now).sort((a, b) => a - b));
    model.save_changes();
  });
  return item;
}

function colourBar(model) {
  const [lo, hi] = model.get("_value_range");
  const wrap = h("div", "tsw-cbar-wrap");
  const bar = h("div", "tsw-cbar");
  const stops = VIRIDIS_256.filter((_, i) => i % 16 === 0 || i === 255);
  bar.style.background = `linear-gradient(to top, ${stops.join(",")})`;
  const labs = h("div", "tsw-cbar-labels");
  labs.append(h("span", "", fmt(hi)), h("span", "", fmt((lo + hi) / 2)), h("span", "", fmt(lo)));
  wrap.append(bar, labs);
  return wrap;
}

export function createLegend(ctx, points) {
  const { model, ui } = ctx;
  const legend = ui.legend;

  function layoutLegend() {
    const k = legend.childElementCount;
    if (!ui.root.classList.contains("tsw-below") || model.get("_label_kind") !== "categorical" || !k) {
      legend.style.gridTemplateColumns = "";
      return;
    }
    let longest = 0;
    for (const name of legend.querySelectorAll(".tsw-legend-name")) {
      longest = Math.max(longest, name.scrollWidth);
    }
    // swatch + gap + name + item padding, then the grid's column gap
    const col = Math.min(150, Math.max(40, longest + 19)) + 8;
    const avail = ctx.size.width + (ctx.size.axesOn ? AX_L : 0) + 8;
    legend.style.gridTemplateColumns =
      `repeat(${legendColumns(k, Math.max(1, Math.floor(avail / col)))}, minmax(0, 1fr))`;
  }

  function updateLegend() {
    legend.replaceChildren();
    const kind = model.get("_label_kind");
    legend.style.display = kind === "none" ? "none" : "";
    if (kind === "categorical") {
      const colors = model.get("_colors");
      ctx.hidden = new Set(model.get("hidden"));
      model.get("_categories").forEach((name, k) => {
        legend.append(legendItem(model, name, k, colors[k % colors.length], ctx.hidden.has(k)));
      });
      layoutLegend();
    } else if (kind === "continuous") {
      const name = model.get("_categories")[0];
      if (name) legend.append(h("div", "tsw-cbar-title", name));
      legend.append(colourBar(model));
    }
  }

  function updateCount() {
    const n = ctx.points.n;
    const sel = typed(model.get("_selection"), Uint32Array).length;
    const vis = points.visibleIndices();
    const shown = vis ? vis.length : n;
    let t = `${n.toLocaleString()} points`;
    if (shown !== n) t += ` (${shown.toLocaleString()} shown)`;
    if (sel) t += ` · ${sel.toLocaleString()} selected`;
    ui.count.textContent = t;
  }

  return { updateLegend, layoutLegend, updateCount };
}
