// The Sources page's logic: what a duty operator should read from a source
// at a glance (on time or late, and by how much; the connection of sources
// Panorama connects to; refused items), problems first. Pure, so it is
// tested without a browser.

import type { SourceView } from './types';

/** A connection state as any connector reports it (`connection` today). */
export interface ConnectionLike {
  state?: string;
  since?: string;
  last_error?: string;
  [k: string]: unknown;
}

/** A source as `/api/v1/sources` lists it, with whatever status fields the server adds. */
export type SourceRow = SourceView & {
  created_at?: string;
  connector?: Record<string, unknown>;
  connection?: ConnectionLike;
  [k: string]: unknown;
};

/** How a source stands, worst first. */
export type SourceHealth = 'down' | 'late' | 'never' | 'errors' | 'ok';
export const HEALTH_RANK: Record<SourceHealth, number> = { down: 0, late: 1, never: 2, errors: 3, ok: 4 };

/** The tone of a connection state word: good, passing trouble, broken, or not known to the console. */
export type Tone = 'good' | 'warn' | 'bad' | 'neutral';

// States the MQTT connector reports, and the words a polled connector is
// likely to use; anything else is shown as it comes, in a neutral tone.
const TONES: Record<string, Tone> = {
  connected: 'good',
  ok: 'good',
  running: 'good',
  polling: 'good',
  idle: 'good',
  connecting: 'warn',
  reconnecting: 'warn',
  retrying: 'warn',
  backoff: 'warn',
  degraded: 'warn',
  failed: 'bad',
  error: 'bad',
  disconnected: 'bad',
  stopped: 'bad',
  unreachable: 'bad',
};

export function toneOf(state: string | undefined | null): Tone {
  return (state && TONES[state.toLowerCase()]) || 'neutral';
}

/** Fields of the source itself; every other object field is a status block (connection, poll…). */
const OWN_FIELDS = new Set([
  'id',
  'name',
  'kind',
  'domain',
  'owner_agency',
  'expected_interval_secs',
  'created_at',
  'last_seen_at',
  'accepted',
  'rejected',
  'last_error',
  'connector',
  'freshness',
]);

/** Status blocks the server attaches to a source (`connection` for MQTT, others as they come), in name order with `connection` first. */
export function statusBlocks(s: SourceRow): { key: string; value: ConnectionLike }[] {
  const out: { key: string; value: ConnectionLike }[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (OWN_FIELDS.has(k) || v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    out.push({ key: k, value: v as ConnectionLike });
  }
  return out.sort((a, b) => (a.key === 'connection' ? -1 : b.key === 'connection' ? 1 : a.key.localeCompare(b.key)));
}

/** Scalar fields in a status block, for a generic key → value list. */
export function blockEntries(b: ConnectionLike): [string, string | number | boolean][] {
  return Object.entries(b)
    .filter((e): e is [string, string | number | boolean] => ['string', 'number', 'boolean'].includes(typeof e[1]))
    .map(([k, v]) => [k, v]);
}

/** The first status block whose state is broken or in trouble, else the first one with a state. */
export function connectionOf(s: SourceRow): { key: string; state: string; tone: Tone; since?: string; error?: string } | null {
  const withState = statusBlocks(s).filter((b) => typeof b.value.state === 'string');
  if (!withState.length) return null;
  const worst = withState.find((b) => toneOf(b.value.state) === 'bad') ?? withState.find((b) => toneOf(b.value.state) === 'warn') ?? withState[0];
  const v = worst.value;
  return {
    key: worst.key,
    state: String(v.state),
    tone: toneOf(v.state),
    since: typeof v.since === 'string' ? v.since : undefined,
    error: typeof v.last_error === 'string' ? v.last_error : typeof v.error === 'string' ? v.error : undefined,
  };
}

const ms = (t: string | undefined | null) => (t ? Date.parse(t) : NaN);

/** Seconds since the last accepted delivery at `now` (ms), or null when it never delivered. */
export function ageAt(s: SourceRow, now: number): number | null {
  const seen = ms(s.last_seen_at ?? s.freshness?.last_seen_at);
  if (Number.isFinite(seen)) return Math.max(0, Math.floor((now - seen) / 1000));
  return null;
}

/**
 * Whether the source is past its contract at `now` (ms), and by how many
 * seconds. Follows the server's rule (panorama-core `Source::freshness`):
 * late once more than the interval passed since the last delivery, or
 * since registration for a source that never delivered. Between polls the
 * page's clock moves on, so a source can turn late without a refresh; the
 * server's own `late` is kept when the times are missing.
 */
export function lateness(s: SourceRow, now: number): { late: boolean; by: number } {
  const limit = s.expected_interval_secs ?? s.freshness?.expected_interval_secs ?? 0;
  const age = ageAt(s, now);
  const created = ms(s.created_at);
  const since = age ?? (Number.isFinite(created) ? Math.max(0, Math.floor((now - created) / 1000)) : null);
  if (since === null) return { late: Boolean(s.freshness?.late), by: 0 };
  return { late: since > limit, by: Math.max(0, since - limit) };
}

/** The one word for a source, worst condition first. */
export function healthOf(s: SourceRow, now: number): SourceHealth {
  const c = connectionOf(s);
  if (c?.tone === 'bad') return 'down';
  const { late } = lateness(s, now);
  if (late) return ageAt(s, now) === null ? 'never' : 'late';
  if (c?.tone === 'warn') return 'down';
  if (s.last_error || (s.rejected ?? 0) > 0) return 'errors';
  return 'ok';
}

export const isProblem = (h: SourceHealth) => h !== 'ok';

/** Problems first (worst first), then the most overdue, then by name. */
export function sortSources(list: SourceRow[], now: number): SourceRow[] {
  const keyed = list.map((s) => ({ s, h: HEALTH_RANK[healthOf(s, now)], by: lateness(s, now).by }));
  keyed.sort((a, b) => a.h - b.h || b.by - a.by || a.s.name.localeCompare(b.s.name, 'vi') || a.s.id.localeCompare(b.s.id));
  return keyed.map((k) => k.s);
}

export interface SourceFilter {
  /** A source kind (`mqtt`, `http_push`…) or '' for all. */
  kind: string;
  /** Only sources with a problem. */
  problems: boolean;
  /** Words in the id, name, agency or domain. */
  text: string;
}

export const DEFAULT_SOURCE_FILTER: SourceFilter = { kind: '', problems: false, text: '' };

export function matchesSource(s: SourceRow, f: SourceFilter, now: number): boolean {
  if (f.kind && s.kind !== f.kind) return false;
  if (f.problems && !isProblem(healthOf(s, now))) return false;
  const q = f.text.trim().toLowerCase();
  if (q) {
    const hay = [s.id, s.name, s.owner_agency ?? '', s.domain ?? ''].join(' ').toLowerCase();
    if (!q.split(/\s+/).every((w) => hay.includes(w))) return false;
  }
  return true;
}

/** Counts of each health word. */
export function countHealth(list: SourceRow[], now: number): Record<SourceHealth, number> {
  const c: Record<SourceHealth, number> = { down: 0, late: 0, never: 0, errors: 0, ok: 0 };
  for (const s of list) c[healthOf(s, now)]++;
  return c;
}

export function sourceFilterFromSearch(p: URLSearchParams): SourceFilter {
  return { kind: p.get('kind') ?? '', problems: p.get('problems') === '1', text: p.get('q') ?? '' };
}

export function sourceFilterToSearch(f: SourceFilter): string {
  const q = new URLSearchParams();
  if (f.kind) q.set('kind', f.kind);
  if (f.problems) q.set('problems', '1');
  if (f.text.trim()) q.set('q', f.text.trim());
  const s = q.toString();
  return s ? `?${s}` : '';
}
