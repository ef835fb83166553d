// Live training curves for TrainingMonitor: loss, learning rate and 2D kNN accuracy,
// drawn on one 2D canvas from float32 buffers, with stage boundaries marked.

function f32(dv) {
  if (!dv || !dv.byteLength) return new Float32Array(0);
  return new Float32Array(dv.buffer, dv.byteOffset, dv.byteLength / 4);
}

function themeColors(el) {
  const s = getComputedStyle(el);
  const fg = s.getPropertyValue("--jp-ui-font-color1").trim() || "#333";
  const grid = s.getPropertyValue("--jp-border-color2").trim() || "#ddd";
  return { fg, grid };
}

function panel(ctx, box, title, xs, ys, bounds, xmax, color, yfix, theme) {
  const { x0, y0, w, h } = box;
  ctx.strokeStyle = theme.grid;
  ctx.strokeRect(x0, y0, w, h);
  ctx.fillStyle = theme.fg;
  ctx.font = "11px sans-serif";
  ctx.fillText(title, x0 + 4, y0 + 12);
  for (const b of bounds) {
    const px = x0 + (b / xmax) * w;
    ctx.strokeStyle = theme.grid;
    ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(px, y0); ctx.lineTo(px, y0 + h); ctx.stroke();
    ctx.setLineDash([]);
  }
  if (!xs.length) return 0;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < ys.length; i++) {
    if (Number.isFinite(ys[i])) { lo = Math.min(lo, ys[i]); hi = Math.max(hi, ys[i]); }
  }
  if (yfix) { lo = yfix[0]; hi = yfix[1]; }
  if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
  ctx.fillText(hi.toPrecision(3), x0 + w - 40, y0 + 12);
  ctx.fillText(lo.toPrecision(3), x0 + w - 40, y0 + h - 3);
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let n = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(ys[i])) continue;
    const px = x0 + (xs[i] / xmax) * w;
    const py = y0 + h - ((ys[i] - lo) / (hi - lo)) * (h - 16) - 2;
    if (n === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    n++;
  }
  ctx.stroke();
  ctx.lineWidth = 1;
  return n;
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "tsw-curves";
  canvas.width = 720;
  canvas.height = 130;
  canvas.style.width = "720px";
  canvas.style.height = "130px";
  el.appendChild(canvas);
  const draw = () => {
    const ctx = canvas.getContext("2d");
    const theme = themeColors(el);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const xmax = Math.max(1, model.get("total_steps"));
    const bounds = model.get("stage_bounds") || [];
    const ex = f32(model.get("epoch_steps"));
    const w = 230, h = 120;
    let drawn = 0;
    drawn += panel(ctx, { x0: 2, y0: 4, w, h }, "loss / epoch", ex, f32(model.get("loss")),
      bounds, xmax, "#1f77b4", null, theme);
    drawn += panel(ctx, { x0: 242, y0: 4, w, h }, "learning rate", ex, f32(model.get("lr")),
      bounds, xmax, "#ff7f0e", null, theme);
    drawn += panel(ctx, { x0: 482, y0: 4, w, h }, "2D kNN accuracy (k=15)",
      f32(model.get("knn_steps")), f32(model.get("knn")), bounds, xmax, "#2ca02c", [0, 1],
      theme);
    el.dataset.points = String(drawn);
    el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
  };
  // One draw per message, however many traits it changed.
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; draw(); });
  };
  const names = ["loss", "lr", "epoch_steps", "knn", "knn_steps", "stage_bounds", "total_steps"];
  for (const n of names) model.on(`change:${n}`, schedule);
  draw();
  return () => { for (const n of names) model.off(`change:${n}`, schedule); };
}

export default { render };
