import { describe, expect, test } from 'vitest';
import {
  ageAt,
  blockEntries,
  connectionOf,
  countHealth,
  healthOf,
  lateness,
  matchesSource,
  sortSources,
  sourceFilterFromSearch,
  sourceFilterToSearch,
  statusBlocks,
  toneOf,
  type SourceRow,
} from './sources';
import { parseRoute } from './router.svelte';
import { formatDuration } from './format';
import { messages } from './messages';

const NOW = Date.parse('2026-12-04T10:00:00Z');
const ago = (secs: number) => new Date(NOW - secs * 1000).toISOString();

function src(over: Partial<SourceRow> = {}): SourceRow {
  const last = over.last_seen_at;
  return {
    id: 'aq-network',
    name: 'Mạng quan trắc không khí',
    kind: 'http_push',
    domain: 'environment',
    expected_interval_secs: 600,
    created_at: ago(86_400),
    accepted: 120,
    rejected: 0,
    freshness: { late: false, expected_interval_secs: over.expected_interval_secs ?? 600, last_seen_at: last ?? null, age_secs: null },
    ...over,
  } as SourceRow;
}

describe('freshness against the contract', () => {
  test('a source that reported within its interval is on time, with the time left', () => {
    const s = src({ last_seen_at: ago(120) });
    expect(ageAt(s, NOW)).toBe(120);
    expect(lateness(s, NOW)).toEqual({ late: false, by: 0 });
    expect(healthOf(s, NOW)).toBe('ok');
  });

  test('a source past its interval is late, by how much beyond the contract', () => {
    const s = src({ last_seen_at: ago(600 + 900) });
    expect(lateness(s, NOW)).toEqual({ late: true, by: 900 });
    expect(healthOf(s, NOW)).toBe('late');
    expect(formatDuration('en', lateness(s, NOW).by)).toBe('15 min');
  });

  test('exactly at the limit is still on time (the server says late only past it)', () => {
    expect(lateness(src({ last_seen_at: ago(600) }), NOW).late).toBe(false);
    expect(lateness(src({ last_seen_at: ago(601) }), NOW)).toEqual({ late: true, by: 1 });
  });

  test('the page clock turns a source late between two polls', () => {
    const s = src({ last_seen_at: ago(590) });
    expect(healthOf(s, NOW)).toBe('ok');
    expect(healthOf(s, NOW + 20_000)).toBe('late');
  });

  test('a source that never reported is late once an interval has passed since registration', () => {
    const fresh = src({ created_at: ago(60), accepted: 0 });
    expect(healthOf(fresh, NOW)).toBe('ok');
    const old = src({ created_at: ago(3600), accepted: 0 });
    expect(healthOf(old, NOW)).toBe('never');
    expect(lateness(old, NOW).by).toBe(3000);
  });

  test('without any times, the server’s own verdict is kept', () => {
    const s = src({ created_at: undefined, freshness: { late: true, expected_interval_secs: 600 } });
    expect(lateness(s, NOW)).toEqual({ late: true, by: 0 });
  });

  test('refused items without lateness show as a problem of their own', () => {
    const s = src({ last_seen_at: ago(10), rejected: 3, last_error: 'unknown entity' });
    expect(healthOf(s, NOW)).toBe('errors');
  });
});

describe('connection state, known and unknown fields', () => {
  const mqtt = (state: string) =>
    src({
      kind: 'mqtt',
      last_seen_at: ago(5),
      connection: { protocol: 'mqtt', broker: '127.0.0.1:1883', state, since: ago(300), messages: 10, rejected_messages: 1 },
    });

  test('tones of the MQTT connector’s states; unknown words stay neutral', () => {
    expect(toneOf('connected')).toBe('good');
    expect(toneOf('reconnecting')).toBe('warn');
    expect(toneOf('connecting')).toBe('warn');
    expect(toneOf('failed')).toBe('bad');
    expect(toneOf('warming_up')).toBe('neutral');
    expect(toneOf(undefined)).toBe('neutral');
  });

  test('a failed or reconnecting connector makes the source "down" even when data arrived recently', () => {
    expect(healthOf(mqtt('connected'), NOW)).toBe('ok');
    expect(healthOf(mqtt('failed'), NOW)).toBe('down');
    expect(healthOf(mqtt('reconnecting'), NOW)).toBe('down');
    expect(connectionOf(mqtt('failed'))).toMatchObject({ key: 'connection', state: 'failed', tone: 'bad' });
  });

  test('a status block the console does not know yet (a polled source’s) is found and shown generically', () => {
    const s = src({ kind: 'poll', last_seen_at: ago(5), poll: { state: 'error', url: 'http://agency.local/x', last_error: 'HTTP 500', next_at: ago(-30) } } as Partial<SourceRow>);
    expect(statusBlocks(s).map((b) => b.key)).toEqual(['poll']);
    expect(connectionOf(s)).toMatchObject({ key: 'poll', state: 'error', tone: 'bad', error: 'HTTP 500' });
    expect(healthOf(s, NOW)).toBe('down');
    expect(blockEntries(statusBlocks(s)[0].value).map(([k]) => k)).toEqual(['state', 'url', 'last_error', 'next_at']);
  });

  test('the source’s own objects (freshness, connector) are not status blocks; connection comes first', () => {
    const s = src({ connector: { host: 'x' }, connection: { state: 'connected' }, a_status: { state: 'ok' } } as Partial<SourceRow>);
    expect(statusBlocks(s).map((b) => b.key)).toEqual(['connection', 'a_status']);
  });

  test('nested values are left out of the generic list', () => {
    expect(blockEntries({ state: 'ok', topics: ['a'], extra: { x: 1 }, n: 2, on: true })).toEqual([
      ['state', 'ok'],
      ['n', 2],
      ['on', true],
    ]);
  });
});

describe('sorting and filtering', () => {
  const list = [
    src({ id: 'ok-b', name: 'B', last_seen_at: ago(10) }),
    src({ id: 'late-small', name: 'Z', last_seen_at: ago(700) }),
    src({ id: 'errors', name: 'A', last_seen_at: ago(10), rejected: 2, last_error: 'bad' }),
    src({ id: 'down', name: 'Y', kind: 'mqtt', last_seen_at: ago(10), connection: { state: 'failed' } }),
    src({ id: 'late-big', name: 'X', last_seen_at: ago(5000) }),
    src({ id: 'ok-a', name: 'A', last_seen_at: ago(10) }),
  ];

  test('problems first: down, then late (most overdue first), then refusing, then on time by name', () => {
    expect(sortSources(list, NOW).map((s) => s.id)).toEqual(['down', 'late-big', 'late-small', 'errors', 'ok-a', 'ok-b']);
  });

  test('counts of each state', () => {
    expect(countHealth(list, NOW)).toEqual({ down: 1, late: 2, never: 0, errors: 1, ok: 2 });
  });

  test('filter by kind, by problem and by words', () => {
    const ids = (f: Parameters<typeof matchesSource>[1]) => list.filter((s) => matchesSource(s, f, NOW)).map((s) => s.id);
    expect(ids({ kind: 'mqtt', problems: false, text: '' })).toEqual(['down']);
    expect(ids({ kind: '', problems: true, text: '' })).toEqual(['late-small', 'errors', 'down', 'late-big']);
    expect(ids({ kind: '', problems: false, text: 'LATE big' })).toEqual(['late-big']);
    expect(ids({ kind: 'file', problems: false, text: '' })).toEqual([]);
  });

  test('the filter round-trips through the address', () => {
    const f = { kind: 'mqtt', problems: true, text: 'aq' };
    expect(sourceFilterToSearch(f)).toBe('?kind=mqtt&problems=1&q=aq');
    expect(sourceFilterFromSearch(new URLSearchParams(sourceFilterToSearch(f)))).toEqual(f);
    expect(sourceFilterToSearch({ kind: '', problems: false, text: '  ' })).toBe('');
  });
});

describe('routes and words', () => {
  test('/sources, one source and /imports', () => {
    expect(parseRoute('/sources')).toEqual({ name: 'sources' });
    expect(parseRoute('/sources/aq%20net')).toEqual({ name: 'sources', id: 'aq net' });
    expect(parseRoute('/imports/')).toEqual({ name: 'imports' });
    expect(parseRoute('/sources/a/b')).toEqual({ name: 'not_found' });
  });

  test('Vietnamese labels carry their diacritics', () => {
    expect(messages.vi['nav.sources']).toBe('Nguồn dữ liệu');
    expect(messages.vi['nav.imports']).toBe('Nhập dữ liệu');
    expect(messages.vi['src.h.late']).toBe('Trễ hạn');
    expect(messages.en['src.h.ok']).toBe('On time');
  });
});
