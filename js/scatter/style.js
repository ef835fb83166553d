// Colours and theme: the viridis ramp of the colour bar, dark/light detection, and the
// point colours and sizes handed to regl-scatterplot. Class colours come from Python
// (tsimcne_widgets/labels.py), so the widget and the HTML export agree.

// viridis at the 10 stops of tsimcne_widgets/labels.py (VIRIDIS_STOPS).
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

function rampHex(stops, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = (i / (n - 1)) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    const c = stops[k].map((v, j) => Math.round(v + f * (stops[k + 1][j] - v)));
    out.push("#" + c.map((v) => v.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}
export const VIRIDIS_256 = rampHex(VIRIDIS, 256);

// Opacity of the points outside a selection, while there is one.
export const DIM_OPACITY = 0.12;

function isDarkTheme(el, pref) {
  if (pref === "dark") return true;
  if (pref === "light") return false;
  const b = document.body;
  if (b && b.dataset.jpThemeLight !== undefined) return b.dataset.jpThemeLight === "false";
  const bg = getComputedStyle(el).getPropertyValue("--jp-layout-color0").trim();
  if (bg) {
    const m = bg.match(/^#([0-9a-f]{6})$/i);
    if (m) {
      const v = parseInt(m[1], 16);
      return ((v >> 16) & 255) + ((v >> 8) & 255) + (v & 255) < 3 * 128;
    }
  }
  return window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)").matches : false;
}

export function applyStyle(ctx) {
  const { model, el, sp, ui } = ctx;
  const kind = model.get("_label_kind");
  const dark = isDarkTheme(el, model.get("theme"));
  ui.root.classList.toggle("tsw-dark", dark);
  const props = {
    backgroundColor: dark ? [0.07, 0.07, 0.07, 1] : [1, 1, 1, 1],
    pointSize: model.get("point_size"),
    opacity: model.get("opacity"),
    lassoColor: dark ? "#dddddd" : "#333333",
  };
  if (kind === "categorical") {
    props.colorBy = "valueA";
    props.pointColor = model.get("_colors").length ? model.get("_colors") : ["#1f77b4"];
  } else if (kind === "continuous") {
    props.colorBy = "valueA";
    props.pointColor = VIRIDIS_256;
  } else {
    props.colorBy = null;
    props.pointColor = [dark ? "#6baed6" : "#1f77b4"];
  }
  // Selected and hovered points keep their own colour (drawn opaque and larger), while
  // the others are dimmed: a black "active" colour hid which class a point belongs to.
  props.pointColorActive = props.pointColor;
  props.pointColorHover = props.pointColor;
  sp.set(props);
}
