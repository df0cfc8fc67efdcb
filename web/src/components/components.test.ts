import { afterEach, describe, expect, test } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import StatusBadge from './StatusBadge.svelte';
import DomainTile from './DomainTile.svelte';
import FreshnessBadge from './FreshnessBadge.svelte';
import { i18n } from '../lib/i18n.svelte';
import type { TileData } from '../lib/overview.svelte';

let mounted: Record<string, unknown>[] = [];
afterEach(() => {
  for (const m of mounted) unmount(m);
  mounted = [];
  document.body.innerHTML = '';
  i18n.set('vi');
});

function render<P extends Record<string, unknown>>(C: any, props: P): HTMLElement {
  const target = document.createElement('div');
  document.body.appendChild(target);
  mounted.push(mount(C, { target, props }));
  flushSync();
  return target;
}

const tile: TileData = {
  domain: { code: 'health', name: 'Y tế', name_en: 'Health', icon: 'heart-pulse', sort: 0 },
  headline: [
    {
      code: 'beds',
      name: 'Số giường bệnh/vạn dân',
      name_en: 'Hospital beds per 10,000',
      domain: 'health',
      unit: 'giường',
      periodicity: 'monthly',
      direction: 'higher_is_better',
      targets: { '2024': 30 },
      thresholds: { kind: 'target_ratio', green: 1, amber: 0.9 },
      headline: true,
      latest: { indicator: 'beds', period: '2024-05', admin_unit: '74', value: 28.4, target: 30, status_colour: 'amber' },
      trend: [27, 28, 28.4],
    },
  ],
  count: 1,
  tally: { green: 0, amber: 1, red: 0, unknown: 0 },
  worst: 'amber',
  sources: 2,
  lateSources: [],
  perMinute: 0,
};

describe('status badge', () => {
  test('says the status in words with an icon, not by colour alone', () => {
    const el = render(StatusBadge, { status: 'red' });
    expect(el.textContent).toContain('✕');
    expect(el.textContent).toContain('Không đạt');
    i18n.set('en');
    flushSync();
    expect(el.textContent).toContain('Off track');
  });
});

describe('domain tile', () => {
  test('shows value against plan, status and freshness, and switches language', () => {
    const el = render(DomainTile, { tile });
    expect(el.querySelector('h2')?.textContent).toBe('Y tế');
    expect(el.querySelector('[data-value]')?.textContent?.replace(/\s+/g, ' ').trim()).toBe('28,4 giường');
    expect(el.textContent).toContain('so với KH 30 giường');
    expect(el.querySelector('[data-status]')?.getAttribute('data-status')).toBe('amber');
    expect(el.querySelector('[data-fresh]')?.getAttribute('data-fresh')).toBe('ok');
    expect(el.querySelector('a')?.getAttribute('href')).toBe('/domains/health');
    i18n.set('en');
    flushSync();
    expect(el.querySelector('h2')?.textContent).toBe('Health');
    expect(el.textContent).toContain('vs plan 30 giường');
  });

  test('a late source is said plainly', () => {
    const late = [{ id: 'his', name: 'HIS', kind: 'http_push', expected_interval_secs: 60, accepted: 0, rejected: 0, freshness: { late: true, expected_interval_secs: 60 } }];
    const el = render(FreshnessBadge, { sources: 1, late });
    expect(el.textContent).toContain('Nguồn trễ: 1');
  });
});
