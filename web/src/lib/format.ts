// Numbers, times and durations for people: vi-VN or en-GB, always in
// Vietnamese time (Asia/Ho_Chi_Minh) whatever the browser's zone.

import type { Lang } from './messages';
import type { Value } from './types';

export const TIME_ZONE = 'Asia/Ho_Chi_Minh';

const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();
function memo<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  let f = cache.get(key) as T | undefined;
  if (!f) {
    f = make();
    cache.set(key, f);
  }
  return f;
}

export const localeOf = (lang: Lang) => (lang === 'vi' ? 'vi-VN' : 'en-GB');

/** A number with sensible precision: 3 significant decimals for small values, none for large. */
export function formatNumber(lang: Lang, v: number | null | undefined, maxFraction?: number): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const abs = Math.abs(v);
  const digits = maxFraction ?? (abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3);
  // Never show "-0": a tiny negative rounds to plain zero.
  if (abs < 0.5 * 10 ** -digits) v = 0;
  return memo(`n:${lang}:${digits}`, () => new Intl.NumberFormat(localeOf(lang), { maximumFractionDigits: digits })).format(v);
}

/** A number with its unit: `%` sticks to the number, other units get a space. */
export function formatWithUnit(lang: Lang, v: number | null | undefined, unit?: string | null): string {
  const n = formatNumber(lang, v);
  if (!unit || n === '—') return n;
  return unit === '%' ? `${n}%` : `${n} ${unit}`;
}

/** Any observed value, for tables and panels. */
export function formatValue(lang: Lang, v: Value | null | undefined, unit?: string | null): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return formatWithUnit(lang, v, unit);
  if (typeof v === 'boolean') return lang === 'vi' ? (v ? 'có' : 'không') : v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '…' : s;
}

function toDate(t: string | number | Date): Date {
  return t instanceof Date ? t : new Date(t);
}

/** 14:05:09 in Vietnamese time. */
export function formatTime(lang: Lang, t: string | number | Date): string {
  return memo(
    `t:${lang}`,
    () => new Intl.DateTimeFormat(localeOf(lang), { timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }),
  ).format(toDate(t));
}

/** 05/06/2024 14:05 in Vietnamese time. */
export function formatDateTime(lang: Lang, t: string | number | Date): string {
  return memo(
    `dt:${lang}`,
    () =>
      new Intl.DateTimeFormat(localeOf(lang), {
        timeZone: TIME_ZONE,
        day: '2-digit',
        month: '2-digit',
        year: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        hour12: false,
      }),
  ).format(toDate(t));
}

/** Thứ Tư, 05/06/2024 — the wall clock's date line. */
export function formatLongDate(lang: Lang, t: string | number | Date): string {
  return memo(
    `ld:${lang}`,
    () => new Intl.DateTimeFormat(localeOf(lang), { timeZone: TIME_ZONE, weekday: 'long', day: '2-digit', month: '2-digit', year: 'numeric' }),
  ).format(toDate(t));
}

/** 14:05 for axis labels. */
export function formatHourMinute(lang: Lang, t: string | number | Date): string {
  return memo(
    `hm:${lang}`,
    () => new Intl.DateTimeFormat(localeOf(lang), { timeZone: TIME_ZONE, hour: '2-digit', minute: '2-digit', hour12: false }),
  ).format(toDate(t));
}

/** An ISO time as "YYYY-MM-DD HH:mm:ss" in Vietnamese time (for CSV). */
export function isoLocal(t: string | number | Date): string {
  const parts = memo(
    'iso',
    () =>
      new Intl.DateTimeFormat('en-CA', {
        timeZone: TIME_ZONE,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hour12: false,
      }),
  ).formatToParts(toDate(t));
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const hour = p.hour === '24' ? '00' : p.hour;
  return `${p.year}-${p.month}-${p.day} ${hour}:${p.minute}:${p.second}`;
}

/** A duration in words: 45 giây, 3 phút, 2 giờ, 4 ngày. */
export function formatDuration(lang: Lang, secs: number): string {
  const s = Math.max(0, Math.round(secs));
  const [n, unit] =
    s < 60 ? [s, 's'] : s < 3600 ? [Math.round(s / 60), 'm'] : s < 86400 ? [Math.round(s / 3600), 'h'] : [Math.round(s / 86400), 'd'];
  const words: Record<Lang, Record<string, string>> = {
    vi: { s: 'giây', m: 'phút', h: 'giờ', d: 'ngày' },
    en: { s: 's', m: 'min', h: 'h', d: 'd' },
  };
  return `${formatNumber(lang, n, 0)} ${words[lang][unit]}`;
}

/** Period labels as people read them: 2024-05 → 05/2024 (T5/2024), 2024-Q2 → Quý 2/2024. */
export function formatPeriod(lang: Lang, p: string): string {
  let m = /^(\d{4})-Q([1-4])$/.exec(p);
  if (m) return lang === 'vi' ? `Quý ${m[2]}/${m[1]}` : `Q${m[2]} ${m[1]}`;
  m = /^(\d{4})-(\d{2})$/.exec(p);
  if (m) return lang === 'vi' ? `T${Number(m[2])}/${m[1]}` : `${m[2]}/${m[1]}`;
  m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(p);
  if (m) return lang === 'vi' ? `${m[3]}/${m[2]}/${m[1]}` : `${m[3]}/${m[2]}/${m[1]}`;
  return p;
}
