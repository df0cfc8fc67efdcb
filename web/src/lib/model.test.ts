import { describe, expect, test } from 'vitest';
import { applyValue, headlineOf, OverviewModel } from './overview.svelte';
import { MapData, primaryAttribute, pointOf } from './mapdata';
import { parseInterval, parseSlides, Rotation } from './playlist';
import type { Entity, IndicatorSummary } from './types';

function summary(over: Partial<IndicatorSummary> = {}): IndicatorSummary {
  return {
    code: 'dossiers',
    name: 'Tỷ lệ hồ sơ trực tuyến',
    name_en: 'Dossiers online',
    domain: 'admin-procedures',
    unit: '%',
    periodicity: 'monthly',
    direction: 'higher_is_better',
    targets: { '2024': 99 },
    thresholds: { kind: 'target_ratio', green: 1, amber: 0.9 },
    headline: true,
    latest: { indicator: 'dossiers', period: '2024-04', admin_unit: '74', value: 99.5, status_colour: 'green', target: 99 },
    trend: [98, 99.5],
    ...over,
  };
}

describe('overview model', () => {
  test('a newer live value becomes the latest, judged against the plan, and extends the trend', () => {
    const s = summary();
    expect(applyValue(s, { indicator: 'dossiers', period: '2024-05', admin_unit: '74', value: 80 })).toBe(true);
    expect(s.latest?.status_colour).toBe('red');
    expect(s.latest?.target).toBe(99);
    expect(s.trend).toEqual([98, 99.5, 80]);
    // A revision of the same period replaces the last point.
    applyValue(s, { indicator: 'dossiers', period: '2024-05', admin_unit: '74', value: 99 });
    expect(s.trend).toEqual([98, 99.5, 99]);
    expect(s.latest?.status_colour).toBe('green');
    // An older period is ignored.
    expect(applyValue(s, { indicator: 'dossiers', period: '2024-01', admin_unit: '74', value: 1 })).toBe(false);
  });

  test('the trend stays bounded however long the page runs', () => {
    const s = summary({ trend: [] });
    for (let m = 1; m <= 12; m++) for (let y = 2030; y < 2034; y++) applyValue(s, { indicator: 'dossiers', period: `${y}-${String(m).padStart(2, '0')}`, admin_unit: '74', value: m });
    expect(s.trend.length).toBeLessThanOrEqual(12);
  });

  test('headline indicators, else the first three', () => {
    const list = [summary({ code: 'a', headline: false }), summary({ code: 'b', headline: true }), summary({ code: 'c', headline: false })];
    expect(headlineOf(list).map((i) => i.code)).toEqual(['b']);
    expect(headlineOf(list.map((i) => ({ ...i, headline: false }))).map((i) => i.code)).toEqual(['a', 'b', 'c']);
  });

  test('live readings are buffered and show the newest per domain', () => {
    const m = new OverviewModel();
    m.queueObs([
      { entity: 'e1', attribute: 'pm25', time: '2024-05-01T00:00:02Z', value: 3, entity_type: 'A', domain: 'environment' },
      { entity: 'e2', attribute: 'pm25', time: '2024-05-01T00:00:01Z', value: 9, entity_type: 'A', domain: 'environment' },
    ]);
    expect(m.lastObs.environment).toBeUndefined();
    m.flush();
    expect(m.lastObs.environment?.entity).toBe('e1');
    m.stop();
  });
});

describe('map data', () => {
  const ent = (id: string, type: string, attrs: Entity['attributes'], lon = 106.6): Entity => ({
    id,
    type,
    name: id,
    domain: 'environment',
    location: { type: 'Point', coordinates: [lon, 11] },
    attributes: attrs,
  });

  test('colours by the most telling attribute', () => {
    expect(primaryAttribute({ temperature: { type: 'number' }, pm25: { type: 'number' } })?.name).toBe('pm25');
    expect(primaryAttribute({ flag: { type: 'boolean' }, fps: { type: 'number' } })?.name).toBe('fps');
    expect(primaryAttribute({ online: { type: 'boolean' }, fps: { type: 'number' } })?.name).toBe('online');
    expect(primaryAttribute({ note: { type: 'text' } })).toBeNull();
    expect(pointOf({ type: 'LineString', coordinates: [[0, 0], [2, 2]] })).toEqual([1, 1]);
  });

  test('groups by type, queues only colour-relevant updates, and normalises to the layer range', () => {
    const d = new MapData();
    d.add([ent('a', 'AQ', { pm25: { type: 'number' } }), ent('b', 'AQ', { pm25: { type: 'number' } }), ent('c', 'Cam', { online: { type: 'boolean' } })]);
    d.add([ent('a', 'AQ', { pm25: { type: 'number' } })]);
    expect(d.size).toBe(3);
    expect(d.layers.get('AQ')?.features.length).toBe(2);
    d.setLatest([
      { entity: 'a', attribute: 'pm25', value: 10 },
      { entity: 'b', attribute: 'pm25', value: 30 },
      { entity: 'c', attribute: 'online', value: false },
    ]);
    expect(d.observe('a', 'temperature', 5)).toBe(false);
    expect(d.observe('zzz', 'pm25', 5)).toBe(false);
    d.rescale();
    const out = d.drain();
    expect(out.length).toBe(3);
    const byId = new Map(out.map(([, id, v]) => [id, v]));
    const [, ida] = d.index.get('a') ?? [];
    const [, idc] = d.index.get('c') ?? [];
    expect(byId.get(ida as number)).toBe(0);
    expect(byId.get(idc as number)).toBe(0);
    expect(d.drain()).toEqual([]);
  });

  test('a thousand updates to the same points collapse to one change per point', () => {
    const d = new MapData();
    d.add(Array.from({ length: 10 }, (_, i) => ent(`e${i}`, 'AQ', { pm25: { type: 'number' } }, 106 + i / 10)));
    for (let k = 0; k < 1000; k++) d.observe(`e${k % 10}`, 'pm25', k);
    expect(d.pendingCount).toBe(10);
  });
});

describe('wall playlist', () => {
  test('parses views and drops unknown ones', () => {
    expect(parseSlides('overview,map,domain:health,domain:nope,bogus,alerts', ['health'])).toEqual([
      { kind: 'overview' },
      { kind: 'map' },
      { kind: 'domain', code: 'health' },
      { kind: 'alerts' },
    ]);
    expect(parseSlides('bogus', [])).toEqual([{ kind: 'overview' }]);
    expect(parseInterval(null)).toBe(30);
    expect(parseInterval('0')).toBe(0.2);
    expect(parseInterval('5')).toBe(5);
  });

  test('rotates on time, pauses and skips', () => {
    let now = 0;
    const r = new Rotation(3, 10_000, () => now);
    now = 9_999;
    expect(r.tick()).toBe(false);
    now = 10_000;
    expect(r.tick()).toBe(true);
    expect(r.index).toBe(1);
    r.toggle();
    now = 50_000;
    expect(r.tick()).toBe(false);
    r.toggle();
    now = 50_001;
    expect(r.tick()).toBe(false);
    r.go(-2);
    expect(r.index).toBe(2);
    now = 60_001;
    expect(r.tick()).toBe(true);
    expect(r.index).toBe(0);
    expect(r.remainingSecs()).toBe(10);
  });
});
