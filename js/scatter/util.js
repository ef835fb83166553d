// Small DOM and buffer helpers shared by the scatter modules.

export const SVG = "http://www.w3.org/2000/svg";

export function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, String(val));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A typed view on a binary trait (a DataView from the kernel): no copy.
export function typed(view, Type) {
  if (!view) return new Type(0);
  if (view instanceof DataView || ArrayBuffer.isView(view)) {
    return new Type(view.buffer, view.byteOffset, Math.floor(view.byteLength / Type.BYTES_PER_ELEMENT));
  }
  if (view instanceof ArrayBuffer) return new Type(view);
  return new Type(0);
}

export function u32Bytes(arr) {
  const a = Uint32Array.from(arr).sort();
  return new DataView(a.buffer);
}

export function fmt(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : String(+v.toFixed(3));
}
