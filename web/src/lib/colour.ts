// Colour scales safe for colour-blind readers.

/** Sequential, low → high (viridis stops), for filled areas. */
export const SEQUENTIAL = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

/** Low → high for points on a dark map (ColorBrewer RdYlBu, reversed): every stop stands out from the background. */
export const POINT_RAMP = ['#4575b4', '#91bfdb', '#e0f3f8', '#fee090', '#fc8d59', '#d73027'];

/** Quantile `q` (0..1) of sorted numbers. */
export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** A robust [low, high] range for a colour scale: the 5th and 95th percentiles. */
export function robustRange(values: Iterable<number>): [number, number] {
  const v = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return [0, 1];
  let lo = quantile(v, 0.05);
  let hi = quantile(v, 0.95);
  if (hi <= lo) {
    lo = v[0];
    hi = v[v.length - 1];
  }
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

/** Position of `v` on [lo, hi], clamped to 0..1. */
export function normalise(v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v)) return NaN;
  return Math.min(1, Math.max(0, (v - lo) / (hi - lo || 1)));
}

/** Linear interpolation in a list of hex stops, t in 0..1. */
export function ramp(stops: string[], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = hex(stops[i]);
  const b = hex(stops[i + 1]);
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * f));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function hex(s: string): number[] {
  const h = s.replace('#', '');
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}
