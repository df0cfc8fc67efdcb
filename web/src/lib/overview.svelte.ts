// The state behind the overview and the wall: every domain with its
// indicators, source freshness and live readings, kept current by the live
// stream. Live items are buffered and applied a few times a second, so a
// burst of thousands of readings costs one render, not thousands.

import { get } from './api';
import { live } from './live';
import { statusOf, periodYear, STATUS_RANK, tally } from './status';
import type { Domain, IndicatorSummary, IndicatorValue, LiveObservation, SourceView, StatusColour } from './types';

export interface TileData {
  domain: Domain;
  headline: IndicatorSummary[];
  count: number;
  tally: Record<StatusColour, number>;
  worst: StatusColour;
  sources: number;
  lateSources: SourceView[];
  lastObs?: LiveObservation;
  perMinute: number;
}

/** Sorts period labels of one periodicity by time (labels sort as text within a kind). */
export function periodAfterOrSame(a: string, b: string): boolean {
  return a.localeCompare(b) >= 0;
}

/** Indicators shown on a domain's tile: its headline ones, else the first three. */
export function headlineOf(inds: IndicatorSummary[], max = 3): IndicatorSummary[] {
  const h = inds.filter((i) => i.headline);
  return (h.length ? h : inds).slice(0, max);
}

/** Applies a live indicator value to a summary; returns whether it changed. */
export function applyValue(ind: IndicatorSummary, v: IndicatorValue): boolean {
  const cur = ind.latest;
  if (cur && !periodAfterOrSame(v.period, cur.period)) return false;
  const year = periodYear(v.period);
  const target = year !== undefined ? ind.targets?.[String(year)] : undefined;
  const next: IndicatorValue = { ...v, target, status_colour: statusOf(ind, v.value, year) };
  if (cur && cur.period === v.period) {
    ind.trend = [...ind.trend.slice(0, -1), v.value];
  } else {
    ind.trend = [...ind.trend, v.value].slice(-12);
  }
  ind.latest = next;
  return true;
}

const WINDOW = 60;

export class OverviewModel {
  domains = $state<Domain[]>([]);
  indicators = $state<IndicatorSummary[]>([]);
  sources = $state<SourceView[]>([]);
  topUnits = $state<string[]>([]);
  lastObs = $state<Record<string, LiveObservation>>({});
  perMinute = $state<Record<string, number>>({});
  loading = $state(true);
  error = $state<string | null>(null);
  loadedAt = $state<number | null>(null);

  // Per-domain ring of per-second counts (not reactive: read once a second).
  private counts = new Map<string, number[]>();
  private second = 0;
  private pendingObs: LiveObservation[] = [];
  private pendingVals: IndicatorValue[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private sourcesTimer: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: (() => void) | null = null;

  tiles = $derived.by(() => this.buildTiles());

  private buildTiles(): TileData[] {
    const byDomain = new Map<string, IndicatorSummary[]>();
    for (const i of this.indicators) {
      let l = byDomain.get(i.domain);
      if (!l) byDomain.set(i.domain, (l = []));
      l.push(i);
    }
    return [...this.domains]
      .sort((a, b) => a.sort - b.sort)
      .map((d) => {
        const inds = byDomain.get(d.code) ?? [];
        const statuses = inds.map((i) => i.latest?.status_colour ?? 'unknown');
        const t = tally(statuses);
        const worst = statuses.reduce<StatusColour>((w, s) => (STATUS_RANK[s] < STATUS_RANK[w] ? s : w), 'unknown');
        const srcs = this.sources.filter((s) => s.domain === d.code);
        return {
          domain: d,
          headline: headlineOf(inds),
          count: inds.length,
          tally: t,
          worst,
          sources: srcs.length,
          lateSources: srcs.filter((s) => s.freshness.late),
          lastObs: this.lastObs[d.code],
          perMinute: this.perMinute[d.code] ?? 0,
        };
      });
  }

  totals = $derived.by(() => {
    const t = tally(this.indicators.map((i) => i.latest?.status_colour ?? 'unknown'));
    return { ...t, late: this.sources.filter((s) => s.freshness.late).length };
  });

  async load(): Promise<void> {
    try {
      const [domains, indicators, sources, units] = await Promise.all([
        get<Domain[]>('/domains'),
        get<IndicatorSummary[]>('/indicators'),
        get<SourceView[]>('/sources'),
        get<{ code: string; level: string; parent?: string }[]>('/admin-units?geometry=false'),
      ]);
      const levels = new Map(units.map((u) => [u.code, u.level]));
      this.topUnits = units
        .filter((u) => u.level !== 'country' && (!u.parent || levels.get(u.parent) === 'country'))
        .map((u) => u.code);
      this.domains = domains;
      this.indicators = indicators;
      this.sources = sources;
      this.error = null;
      this.loadedAt = Date.now();
    } catch (e) {
      this.error = (e as Error).message;
    } finally {
      this.loading = false;
    }
  }

  async refreshSources(): Promise<void> {
    try {
      this.sources = await get<SourceView[]>('/sources');
    } catch {
      // The connection banner already says the server is unreachable.
    }
  }

  /** Starts live updates; returns a function that stops them. */
  start(): () => void {
    const c = live();
    this.unsubscribe =
      c?.subscribe(
        {},
        {
          observations: (items) => this.queueObs(items),
          indicatorValues: (items) => this.queueVals(items),
          resync: () => void this.load(),
        },
      ) ?? null;
    this.ticker = setInterval(() => this.tick(), 1000);
    this.sourcesTimer = setInterval(() => void this.refreshSources(), 30_000);
    return () => this.stop();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.ticker) clearInterval(this.ticker);
    if (this.sourcesTimer) clearInterval(this.sourcesTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.ticker = this.sourcesTimer = this.flushTimer = null;
  }

  queueObs(items: LiveObservation[]): void {
    for (const o of items) {
      let ring = this.counts.get(o.domain);
      if (!ring) this.counts.set(o.domain, (ring = new Array(WINDOW).fill(0)));
      ring[this.second % WINDOW]++;
    }
    // Keep only the newest per domain; the rest would be overwritten anyway.
    this.pendingObs.push(...items);
    if (this.pendingObs.length > 5000) this.pendingObs = this.pendingObs.slice(-5000);
    this.scheduleFlush();
  }

  queueVals(items: IndicatorValue[]): void {
    this.pendingVals.push(...items);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer === null) this.flushTimer = setTimeout(() => this.flush(), 150);
  }

  /** Applies buffered live items (public for tests). */
  flush(): void {
    this.flushTimer = null;
    if (this.pendingObs.length) {
      const next = { ...this.lastObs };
      for (const o of this.pendingObs) {
        const cur = next[o.domain];
        if (!cur || o.time >= cur.time) next[o.domain] = o;
      }
      this.pendingObs = [];
      this.lastObs = next;
    }
    if (this.pendingVals.length) {
      const top = new Set(this.topUnits);
      const byCode = new Map(this.indicators.map((i) => [i.code, i]));
      let changed = false;
      for (const v of this.pendingVals) {
        const ind = byCode.get(v.indicator);
        if (ind && (top.size === 0 || top.has(v.admin_unit))) changed = applyValue(ind, v) || changed;
      }
      this.pendingVals = [];
      if (changed) this.indicators = [...this.indicators];
    }
  }

  private tick(): void {
    this.second++;
    const rates: Record<string, number> = {};
    for (const [d, ring] of this.counts) {
      ring[this.second % WINDOW] = 0;
      rates[d] = ring.reduce((a, b) => a + b, 0);
    }
    this.perMinute = rates;
  }
}
