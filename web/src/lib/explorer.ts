// The explorer's logic: time ranges, default buckets and the CSV of a result.

import { isoLocal } from './format';
import { toCsv } from './csv';

export const BUCKETS = ['1m', '5m', '10m', '15m', '30m', '1h', '3h', '6h', '12h', '1d'] as const;
export const AGGS = ['avg', 'min', 'max', 'sum', 'count', 'last'] as const;
export const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 } as const;
export type RangeKey = keyof typeof RANGES | 'custom';

/** A bucket that gives a few hundred points over `secs` (raw for an hour or less). */
export function defaultBucket(secs: number): string {
  if (secs <= 3600) return '';
  if (secs <= 6 * 3600) return '1m';
  if (secs <= 86400) return '5m';
  if (secs <= 7 * 86400) return '1h';
  return '3h';
}

/** A `datetime-local` value (Vietnamese wall time) as an instant. */
export function fromLocalInput(v: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v)) return null;
  const d = new Date(`${v}:00+07:00`);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** An instant as a `datetime-local` value in Vietnamese time. */
export function toLocalInput(d: Date): string {
  return isoLocal(d).slice(0, 16).replace(' ', 'T');
}

export interface SeriesResult {
  entity: string;
  name: string;
  attribute: string;
  unit?: string;
  points: { time: string; value: unknown; count?: number }[];
}

/** One row per point: UTC time, Vietnamese time, entity, name, attribute, value, count. */
export function resultsCsv(results: SeriesResult[]): string {
  const rows: unknown[][] = [];
  for (const r of results) {
    for (const p of r.points) rows.push([p.time, isoLocal(p.time), r.entity, r.name, r.attribute, p.value, p.count ?? '', r.unit ?? '']);
  }
  return toCsv(['time_utc', 'time_asia_ho_chi_minh', 'entity', 'name', 'attribute', 'value', 'count', 'unit'], rows);
}

/** min, max, mean and count of the numeric points. */
export function summary(points: { value: unknown }[]): { min: number; max: number; mean: number; n: number } | null {
  let min = Infinity, max = -Infinity, sum = 0, n = 0;
  for (const p of points) {
    const v = typeof p.value === 'boolean' ? (p.value ? 1 : 0) : p.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    n++;
  }
  return n ? { min, max, mean: sum / n, n } : null;
}
