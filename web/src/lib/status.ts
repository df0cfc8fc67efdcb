// Status against plan, the same rule as the server (panorama-core
// Indicator::status), so live indicator values can be judged on arrival.
// Colours are from the Okabe–Ito palette (safe for colour-blind readers) and
// always come with an icon and a word.

import type { Indicator, StatusColour } from './types';

/** Share of the target reached; > 1 means better than planned. */
export function attainment(value: number, target: number, higherIsBetter: boolean): number {
  const [num, den] = higherIsBetter ? [value, target] : [target, value];
  if (den === 0) return num >= 0 ? Infinity : -Infinity;
  if (den < 0) return 2 - num / den;
  return num / den;
}

/** The year a period label falls in. */
export function periodYear(period: string): number | undefined {
  const y = Number(period.slice(0, 4));
  return Number.isInteger(y) && y > 1900 ? y : undefined;
}

/** Status colour of `value` for a period of `year`, per the indicator's thresholds. */
export function statusOf(ind: Pick<Indicator, 'direction' | 'thresholds' | 'targets'>, value: number, year: number | undefined): StatusColour {
  const higher = ind.direction === 'higher_is_better';
  const th = ind.thresholds ?? { kind: 'target_ratio', green: 1, amber: 0.9 };
  if (th.kind === 'absolute') {
    const ok = (v: number, b: number) => (higher ? v >= b : v <= b);
    return ok(value, th.green) ? 'green' : ok(value, th.amber) ? 'amber' : 'red';
  }
  const target = year === undefined ? undefined : ind.targets?.[String(year)];
  if (target === undefined || target === null) return 'unknown';
  const r = attainment(value, target, higher);
  return r >= th.green ? 'green' : r >= th.amber ? 'amber' : 'red';
}

export const STATUS_COLOURS: Record<StatusColour, string> = {
  green: '#0072B2', // blue
  amber: '#E69F00', // orange
  red: '#D55E00', // vermillion
  unknown: '#8a8f98', // grey
};

export const STATUS_ICONS: Record<StatusColour, string> = {
  green: '✓',
  amber: '!',
  red: '✕',
  unknown: '?',
};

/** Worst first, for sorting and summarising. */
export const STATUS_RANK: Record<StatusColour, number> = { red: 0, amber: 1, green: 2, unknown: 3 };

/** Counts of each status. */
export function tally(statuses: StatusColour[]): Record<StatusColour, number> {
  const t: Record<StatusColour, number> = { green: 0, amber: 0, red: 0, unknown: 0 };
  for (const s of statuses) t[s]++;
  return t;
}
