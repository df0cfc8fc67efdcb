import { describe, expect, test } from 'vitest';
import { attainment, statusOf, tally } from './status';
import { formatDuration, formatNumber, formatPeriod, formatTime, formatWithUnit, isoLocal } from './format';
import { coarsen, comparePeriods, defaultRollup, grainsFor, rollUp } from './periods';
import { parseRoute } from './router.svelte';
import { messages } from './messages';
import { translate } from './i18n.svelte';
import { csvCell, toCsv } from './csv';
import { defaultBucket, fromLocalInput, resultsCsv, summary, toLocalInput } from './explorer';
import { normalise, ramp, robustRange } from './colour';
import type { Indicator } from './types';

const ind = (over: Partial<Indicator> = {}): Pick<Indicator, 'direction' | 'thresholds' | 'targets'> => ({
  direction: 'higher_is_better',
  thresholds: { kind: 'target_ratio', green: 1, amber: 0.9 },
  targets: { '2024': 100 },
  ...over,
});

describe('status against plan (same rule as panorama-core)', () => {
  test('target ratio, higher is better', () => {
    expect(statusOf(ind(), 100, 2024)).toBe('green');
    expect(statusOf(ind(), 95, 2024)).toBe('amber');
    expect(statusOf(ind(), 89, 2024)).toBe('red');
    expect(statusOf(ind(), 89, 2023)).toBe('unknown');
  });
  test('target ratio, lower is better', () => {
    const l = ind({ direction: 'lower_is_better' });
    expect(statusOf(l, 100, 2024)).toBe('green');
    expect(statusOf(l, 105, 2024)).toBe('amber');
    expect(statusOf(l, 120, 2024)).toBe('red');
  });
  test('absolute bounds', () => {
    const aqi = ind({ direction: 'lower_is_better', thresholds: { kind: 'absolute', green: 50, amber: 100 } });
    expect(statusOf(aqi, 50, 2024)).toBe('green');
    expect(statusOf(aqi, 80, 2024)).toBe('amber');
    expect(statusOf(aqi, 150, 2024)).toBe('red');
  });
  test('attainment edge cases', () => {
    expect(attainment(5, 0, true)).toBe(Infinity);
    expect(attainment(-5, -10, true)).toBeCloseTo(1.5);
    expect(tally(['green', 'red', 'red', 'unknown'])).toEqual({ green: 1, amber: 0, red: 2, unknown: 1 });
  });
});

describe('formatting for people', () => {
  test('numbers in vi-VN and en', () => {
    expect(formatNumber('vi', 1234567.8)).toBe('1.234.568');
    expect(formatNumber('vi', 12.345)).toBe('12,35');
    expect(formatNumber('en', 12.345)).toBe('12.35');
    expect(formatNumber('vi', NaN)).toBe('—');
    expect(formatNumber('vi', -0.0001)).toBe('0');
    expect(formatWithUnit('vi', 99.1, '%')).toBe('99,1%');
    expect(formatWithUnit('vi', 4300, 'người')).toBe('4.300 người');
  });
  test('times are Vietnamese time whatever the zone of the browser', () => {
    expect(formatTime('vi', '2024-05-01T00:02:03Z')).toBe('07:02:03');
    expect(isoLocal('2024-05-01T17:30:00Z')).toBe('2024-05-02 00:30:00');
  });
  test('periods and durations read naturally', () => {
    expect(formatPeriod('vi', '2024-05')).toBe('T5/2024');
    expect(formatPeriod('vi', '2024-Q2')).toBe('Quý 2/2024');
    expect(formatPeriod('en', '2024-Q2')).toBe('Q2 2024');
    expect(formatDuration('vi', 45)).toBe('45 giây');
    expect(formatDuration('vi', 7200)).toBe('2 giờ');
    expect(formatDuration('en', 3 * 86400)).toBe('3 d');
  });
});

describe('periods', () => {
  test('roll months up into quarters and years', () => {
    const v = [
      { period: '2024-01', value: 1 },
      { period: '2024-02', value: 2 },
      { period: '2024-04', value: 4 },
      { period: '2025-01', value: 10 },
    ];
    expect(rollUp(v, 'quarter', 'sum').map((x) => [x.period, x.value])).toEqual([
      ['2024-Q1', 3],
      ['2024-Q2', 4],
      ['2025-Q1', 10],
    ]);
    expect(rollUp(v, 'year', 'avg').map((x) => [x.period, x.value])).toEqual([
      ['2024', 7 / 3],
      ['2025', 10],
    ]);
    expect(coarsen('2024-Q3', 'year')).toBe('2024');
    expect(grainsFor('monthly')).toEqual(['month', 'quarter', 'year']);
    expect(grainsFor('yearly')).toEqual(['year']);
  });
  test('rates average, counts add up', () => {
    expect(defaultRollup('%')).toBe('avg');
    expect(defaultRollup('đ/kg')).toBe('avg');
    expect(defaultRollup('vụ')).toBe('sum');
    expect(defaultRollup('AQI')).toBe('avg');
    expect(defaultRollup('vụ', 'daily')).toBe('avg');
  });
  test('ordering by period start', () => {
    expect(['2024-Q2', '2024-01', '2023'].sort(comparePeriods)).toEqual(['2023', '2024-01', '2024-Q2']);
  });
});

describe('routes', () => {
  test('client routes match the server list', () => {
    expect(parseRoute('/')).toEqual({ name: 'overview' });
    expect(parseRoute('/domains/health')).toEqual({ name: 'domain', code: 'health' });
    expect(parseRoute('/wall/')).toEqual({ name: 'wall' });
    expect(parseRoute('/nope')).toEqual({ name: 'not_found' });
  });
});

describe('messages', () => {
  test('every key exists in both languages and the Vietnamese keeps its diacritics', () => {
    const vi = Object.keys(messages.vi).sort();
    expect(Object.keys(messages.en).sort()).toEqual(vi);
    for (const k of vi) expect(messages.en[k as keyof typeof messages.en].length).toBeGreaterThan(0);
    expect(messages.vi['status.amber']).toBe('Cảnh báo');
    expect(messages.vi['status.red']).toBe('Không đạt');
    expect(translate('vi', 'fresh.late', { n: 2 })).toBe('Nguồn trễ: 2');
    expect(translate('en', 'fresh.late', { n: 2 })).toBe('Late sources: 2');
  });
});

describe('explorer and CSV', () => {
  test('cells are quoted when needed', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell(1.5)).toBe('1.5');
    expect(toCsv(['a', 'b'], [[1, 'x']])).toBe('a,b\r\n1,x\r\n');
  });
  test('results become one row per point with Vietnamese time beside UTC', () => {
    const csv = resultsCsv([{ entity: 'urn:x:1', name: 'Trạm Dĩ An', attribute: 'pm25', unit: 'µg/m3', points: [{ time: '2024-05-01T00:00:00Z', value: 12.5, count: 3 }] }]);
    expect(csv.split('\r\n')[1]).toBe('2024-05-01T00:00:00Z,2024-05-01 07:00:00,urn:x:1,Trạm Dĩ An,pm25,12.5,3,µg/m3');
  });
  test('local inputs are Vietnamese wall time', () => {
    expect(fromLocalInput('2024-05-01T07:00')?.toISOString()).toBe('2024-05-01T00:00:00.000Z');
    expect(toLocalInput(new Date('2024-05-01T00:00:00Z'))).toBe('2024-05-01T07:00');
    expect(fromLocalInput('garbage')).toBeNull();
    expect(defaultBucket(3600)).toBe('');
    expect(defaultBucket(7 * 86400)).toBe('1h');
    expect(summary([{ value: 1 }, { value: 3 }, { value: 'x' }])).toEqual({ min: 1, max: 3, mean: 2, n: 2 });
  });
});

describe('colour scales', () => {
  test('robust range ignores outliers and never collapses', () => {
    const v = Array.from({ length: 100 }, (_, i) => i);
    v.push(10_000);
    const [lo, hi] = robustRange(v);
    expect(lo).toBeGreaterThan(0);
    expect(hi).toBeLessThan(200);
    expect(robustRange([5, 5, 5])).toEqual([5, 6]);
    expect(normalise(15, 10, 20)).toBe(0.5);
    expect(normalise(30, 10, 20)).toBe(1);
    expect(ramp(['#000000', '#ffffff'], 0.5)).toBe('#808080');
  });
});
