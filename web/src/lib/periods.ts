// Indicator periods: labels as the API writes them (2024, 2024-Q2, 2024-05,
// 2024-05-31) and rolling finer periods up into coarser ones.

import type { Periodicity } from './types';

export type Grain = 'day' | 'month' | 'quarter' | 'year';
export type Rollup = 'sum' | 'avg';

/** The grain of a period label. */
export function grainOf(label: string): Grain | undefined {
  if (/^\d{4}$/.test(label)) return 'year';
  if (/^\d{4}-Q[1-4]$/.test(label)) return 'quarter';
  if (/^\d{4}-\d{2}$/.test(label)) return 'month';
  if (/^\d{4}-\d{2}-\d{2}$/.test(label)) return 'day';
  return undefined;
}

export function grainOfPeriodicity(p: Periodicity): Grain {
  return p === 'yearly' ? 'year' : p === 'quarterly' ? 'quarter' : p === 'monthly' ? 'month' : 'day';
}

const ORDER: Grain[] = ['day', 'month', 'quarter', 'year'];

/** Grains an indicator of periodicity `p` can be shown at (its own and coarser). */
export function grainsFor(p: Periodicity): Grain[] {
  return ORDER.slice(ORDER.indexOf(grainOfPeriodicity(p))).filter((g) => g !== 'day' || p === 'daily' || p === 'real_time');
}

/** The label of the period of grain `g` that contains `label`. */
export function coarsen(label: string, g: Grain): string {
  const y = label.slice(0, 4);
  const own = grainOf(label);
  if (g === 'year') return y;
  if (g === 'quarter') {
    if (own === 'quarter') return label;
    const m = Number(label.slice(5, 7));
    return `${y}-Q${Math.floor((m - 1) / 3) + 1}`;
  }
  if (g === 'month') return label.slice(0, 7);
  return label;
}

/** Sums or averages values into periods of grain `g`, in time order. */
export function rollUp(values: { period: string; value: number }[], g: Grain, how: Rollup): { period: string; value: number; n: number }[] {
  const acc = new Map<string, { sum: number; n: number }>();
  for (const v of values) {
    if (!Number.isFinite(v.value)) continue;
    const k = coarsen(v.period, g);
    const a = acc.get(k) ?? { sum: 0, n: 0 };
    a.sum += v.value;
    a.n += 1;
    acc.set(k, a);
  }
  return [...acc.entries()]
    .sort(([a], [b]) => comparePeriods(a, b))
    .map(([period, a]) => ({ period, value: how === 'sum' ? a.sum : a.sum / a.n, n: a.n }));
}

/** Rates, indices, prices, measurements and daily readings average; counts and amounts add up. */
export function defaultRollup(unit: string, periodicity?: Periodicity): Rollup {
  if (periodicity === 'daily' || periodicity === 'real_time') return 'avg';
  const u = unit.toLowerCase();
  const averaged = ['%', '‰', '/', 'chỉ số', 'index', 'aqi', 'wqi', 'µg', 'mg', '°', 'db', 'giường', 'm²', 'm2', 'ha'];
  if (averaged.some((x) => u.includes(x)) || u.startsWith('đ')) return 'avg';
  return 'sum';
}

/** Orders labels by the start of their period. */
export function comparePeriods(a: string, b: string): number {
  return periodStart(a) - periodStart(b) || a.localeCompare(b);
}

/** Start of a period as a UTC timestamp (ms). */
export function periodStart(label: string): number {
  const y = Number(label.slice(0, 4));
  const g = grainOf(label);
  if (g === 'quarter') return Date.UTC(y, (Number(label.slice(6)) - 1) * 3, 1);
  if (g === 'month') return Date.UTC(y, Number(label.slice(5, 7)) - 1, 1);
  if (g === 'day') return Date.UTC(y, Number(label.slice(5, 7)) - 1, Number(label.slice(8, 10)));
  return Date.UTC(y, 0, 1);
}
