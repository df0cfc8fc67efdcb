import { describe, expect, test } from 'vitest';
import {
  DEFAULT_ALERT_FILTER,
  actionKey,
  actorName,
  alertFilterFromSearch,
  alertFilterToSearch,
  alertParams,
  chartLink,
  conditionText,
  countByStatus,
  describeEntry,
  entryNote,
  firedValues,
  formatSpan,
  incidentParams,
  matchesAlert,
  mergeAlert,
  slaState,
  slaText,
  unitsWithin,
  type Alert,
  type AlertFilter,
  type TimelineEntry,
} from './ops';
import { parseRoute } from './router.svelte';
import { LiveClient } from './live';
import { messages } from './messages';

const alert = (over: Partial<Alert> = {}): Alert => ({
  id: 1,
  rule: 'river-level-alarm',
  key: 'k',
  severity: 'high',
  status: 'open',
  title: 'Mực nước sông vượt báo động: Cầu Ông Cộ (3,2)',
  domain: 'water',
  admin_unit: '718',
  entity: 'urn:ngsi-ld:WaterObserved:cau-ong-co',
  attribute: 'waterLevel',
  value: 3.2,
  data: {},
  fired_at: '2026-11-22T01:00:00Z',
  opened_at: '2026-11-22T01:00:00Z',
  last_seen_at: '2026-11-22T01:00:00Z',
  occurrences: 1,
  ...over,
});

const f = (over: Partial<AlertFilter> = {}): AlertFilter => ({ ...DEFAULT_ALERT_FILTER, ...over });

describe('alert feed filters', () => {
  test('the default shows open and acknowledged alerts of any severity', () => {
    expect(alertParams(DEFAULT_ALERT_FILTER)).toEqual({ status: 'open,acknowledged', severity: '', domain: '', admin_unit: '' });
    // Every status, or none ticked, means no status filter at all.
    expect(alertParams(f({ status: ['open', 'acknowledged', 'resolved'] })).status).toBe('');
    expect(alertParams(f({ status: [] })).status).toBe('');
  });

  test('a filter survives the address bar both ways', () => {
    const g = f({ status: ['resolved'], severity: 'high', domain: 'water', admin_unit: '718' });
    const back = alertFilterFromSearch(new URLSearchParams(alertFilterToSearch(g)));
    expect(back).toEqual(g);
    expect(alertFilterToSearch(DEFAULT_ALERT_FILTER)).toBe('');
    expect(alertFilterFromSearch(new URLSearchParams('status=nonsense&severity=bad'))).toEqual(f({ status: [], severity: '' }));
  });

  test('severity is a floor: high lets critical and high through', () => {
    expect(matchesAlert(f({ severity: 'high' }), alert({ severity: 'critical' }))).toBe(true);
    expect(matchesAlert(f({ severity: 'high' }), alert({ severity: 'high' }))).toBe(true);
    expect(matchesAlert(f({ severity: 'high' }), alert({ severity: 'medium' }))).toBe(false);
  });

  test('status, domain and area (with the units under it) are matched like the server does', () => {
    expect(matchesAlert(f(), alert({ status: 'resolved' }))).toBe(false);
    expect(matchesAlert(f({ domain: 'environment' }), alert())).toBe(false);
    const within = unitsWithin(
      [
        { code: '74' },
        { code: '718', parent: '74' },
        { code: '25747', parent: '718' },
      ],
      '74',
    );
    expect([...within].sort()).toEqual(['25747', '718', '74']);
    expect(matchesAlert(f({ admin_unit: '74' }), alert({ admin_unit: '25747' }), within)).toBe(true);
    expect(matchesAlert(f({ admin_unit: '74' }), alert({ admin_unit: null }), within)).toBe(false);
    expect(matchesAlert(f({ admin_unit: '719' }), alert())).toBe(false);
  });

  test('live changes: a new alert goes on top, a change replaces, one that leaves the filter goes', () => {
    let list = [alert({ id: 1, opened_at: '2026-11-22T01:00:00Z' })];
    list = mergeAlert(list, alert({ id: 2, opened_at: '2026-11-22T02:00:00Z' }), f());
    expect(list.map((a) => a.id)).toEqual([2, 1]);
    list = mergeAlert(list, alert({ id: 1, status: 'acknowledged', acknowledged_by: 'user:lan' }), f());
    expect(list.find((a) => a.id === 1)?.status).toBe('acknowledged');
    expect(list.map((a) => a.id)).toEqual([2, 1]);
    list = mergeAlert(list, alert({ id: 2, status: 'resolved' }), f());
    expect(list.map((a) => a.id)).toEqual([1]);
    // An alert of another domain never enters a filtered feed.
    expect(mergeAlert(list, alert({ id: 3, domain: 'traffic' }), f({ domain: 'water' }))).toBe(list);
  });
});

describe('incident board', () => {
  test('counts by status, marked when the count stopped short', () => {
    const c = countByStatus([{ status: 'new' }, { status: 'new' }, { status: 'closed' }]);
    expect(c).toEqual({ new: '2', assigned: '0', in_progress: '0', reopened: '0', resolved: '0', closed: '1' });
    expect(countByStatus([{ status: 'new' }], true).new).toBe('1+');
    expect(countByStatus([{ status: 'new' }], true).closed).toBe('0');
  });

  test('query parameters leave out the status for the counts', () => {
    const g = { status: ['new' as const], severity: 'high' as const, type: 'flood', agency: 'so-gtvt', admin_unit: '718' };
    expect(incidentParams(g)).toEqual({ status: 'new', severity: 'high', type: 'flood', agency: 'so-gtvt', admin_unit: '718' });
    expect(incidentParams(g, false).status).toBe('');
  });

  test('routes of the operations views', () => {
    expect(parseRoute('/alerts')).toEqual({ name: 'alerts' });
    expect(parseRoute('/incidents')).toEqual({ name: 'incidents' });
    expect(parseRoute('/incidents/42')).toEqual({ name: 'incident', id: 42 });
    expect(parseRoute('/incidents/0')).toEqual({ name: 'not_found' });
    expect(parseRoute('/incidents/abc')).toEqual({ name: 'not_found' });
  });
});

describe('SLA timer', () => {
  const base = { status: 'new' as const, respond_by: '2026-11-22T02:00:00Z', resolve_by: '2026-11-22T06:00:00Z', responded_at: null, resolved_at: null, closed_at: null };
  const at = (iso: string) => Date.parse(iso);

  test('before handling starts, the respond deadline counts', () => {
    const s = slaState(base, at('2026-11-22T00:54:30Z'));
    expect(s).toEqual({ stage: 'respond', deadline: base.respond_by, left: 3930, breached: false });
    expect(slaText('vi', s)).toBe('Còn 1 giờ 05 phút để bắt đầu xử lý');
    expect(slaText('en', s)).toBe('1 h 05 min left to start handling');
  });

  test('exactly at the deadline is not yet breached; a second later it is', () => {
    expect(slaState(base, at('2026-11-22T02:00:00Z')).breached).toBe(false);
    const late = slaState(base, at('2026-11-22T02:12:03Z'));
    expect(late.breached).toBe(true);
    expect(late.left).toBe(-723);
    expect(slaText('vi', late)).toBe('Quá hạn bắt đầu xử lý 12 phút 03 giây');
  });

  test('once handling started, the resolve deadline counts', () => {
    const s = slaState({ ...base, status: 'in_progress', responded_at: '2026-11-22T01:00:00Z' }, at('2026-11-22T03:00:00Z'));
    expect(s.stage).toBe('resolve');
    expect(slaText('en', s)).toBe('3 h 00 min left to resolve');
  });

  test('a resolved case says whether it met the deadline', () => {
    const ok = slaState({ ...base, status: 'resolved', responded_at: '2026-11-22T01:00:00Z', resolved_at: '2026-11-22T05:00:00Z' }, at('2026-11-23T00:00:00Z'));
    expect(ok).toMatchObject({ stage: 'done', breached: false, left: null });
    expect(slaText('vi', ok)).toBe('Giải quyết đúng hạn');
    const late = slaState({ ...base, status: 'closed', resolved_at: '2026-11-22T07:00:00Z' }, at('2026-11-23T00:00:00Z'));
    expect(slaText('vi', late)).toBe('Giải quyết trễ hạn');
    expect(slaState({ ...base, respond_by: null, resolve_by: null }, 0).stage).toBe('none');
  });

  test('spans read in the two largest units', () => {
    expect(formatSpan('vi', 45)).toBe('45 giây');
    expect(formatSpan('vi', 125)).toBe('2 phút 05 giây');
    expect(formatSpan('vi', 2 * 86400 + 3 * 3600 + 59)).toBe('2 ngày 3 giờ');
    expect(formatSpan('en', 86400)).toBe('1 d');
    expect(formatSpan('en', -90)).toBe('1 min 30 s');
  });
});

describe('who and what, in words', () => {
  test('actors', () => {
    expect(actorName('vi', 'user:lan')).toBe('lan');
    expect(actorName('vi', 'rule:street-flooding')).toBe('quy tắc street-flooding');
    expect(actorName('en', 'system')).toBe('system');
    expect(actorName('vi', null)).toBe('—');
  });

  const e = (kind: string, data: Record<string, unknown>, text: string | null = null): TimelineEntry => ({ id: 1, incident: 1, at: '2026-11-22T01:00:00Z', by: 'user:lan', kind, data, text });

  test('every kind of timeline entry reads in both languages', () => {
    expect(describeEntry('vi', e('created', { origin: 'alert' }))).toBe('Tạo sự cố (từ cảnh báo)');
    expect(describeEntry('vi', e('created', { origin: 'drone' }))).toBe('Tạo sự cố (drone)');
    expect(describeEntry('vi', e('status', { from: 'in_progress', to: 'resolved' }))).toBe('Trạng thái: Đang xử lý → Đã giải quyết');
    expect(describeEntry('en', e('status', { from: 'resolved', to: 'closed' }))).toBe('Status: Resolved → Closed');
    expect(describeEntry('vi', e('assigned', { agency: { from: null, to: 'so-gtvt' } }), { agency: () => 'Sở Giao thông vận tải' })).toBe('Giao cho Sở Giao thông vận tải');
    expect(describeEntry('vi', e('assigned', { assignee: { from: null, to: 'lan' } }))).toBe('Phân công cho lan');
    expect(describeEntry('vi', e('checklist', { step: 0, done: true }))).toBe('Hoàn thành bước 1');
    expect(describeEntry('en', e('checklist', { step: 2, done: false }))).toBe('Step 3 unticked');
    expect(describeEntry('vi', e('alert_linked', { alerts: [4, 5] }))).toBe('Gắn cảnh báo #4, #5');
    expect(describeEntry('vi', e('attachment', { filename: 'hien-truong.jpg', size: 10 }))).toBe('Đính kèm tệp hien-truong.jpg');
    expect(describeEntry('vi', e('updated', { severity: {}, title: {} }))).toBe('Cập nhật: mức độ, tiêu đề');
    expect(describeEntry('vi', e('escalated', { level: 1, stage: 'respond', deadline: '2026-11-22T02:00:00Z', name: 'Trưởng ca' }))).toBe(
      'Quá hạn bắt đầu xử lý (09:00 22/11/2026): leo thang lên cấp 1 Trưởng ca',
    );
  });

  test("comments are shown as written; the server's English notes are not", () => {
    expect(entryNote(e('comment', {}, 'Đã cử 2 máy bơm'))).toBe('Đã cử 2 máy bơm');
    expect(entryNote(e('checklist', {}, 'Cảnh báo người dân: xong'))).toBe('Cảnh báo người dân: xong');
    expect(entryNote(e('assigned', {}, 'agency so-gtvt'))).toBeNull();
    expect(entryNote(e('status', {}, null))).toBeNull();
  });

  test('every status has a button label and a word in both languages', () => {
    for (const s of ['assigned', 'in_progress', 'resolved', 'closed', 'reopened'] as const) {
      expect(messages.vi[actionKey(s)]).toBeTruthy();
      expect(messages.en[actionKey(s)]).toBeTruthy();
    }
  });

  test('the condition that fired an alert, in a few symbols', () => {
    expect(conditionText('vi', { kind: 'threshold', above: 0.3, for: '5m' })).toBe('> 0,3 trong 5m');
    expect(conditionText('en', { kind: 'aggregate', agg: 'avg', window: '1h', above: 150 })).toBe('avg 1h > 150');
    expect(conditionText('vi', { kind: 'freshness', of: 'source', grace: '5m' })).toBe('im lặng quá 5m');
    expect(conditionText('vi', undefined)).toBe('');
  });
});

describe('the data that fired an alert', () => {
  test('links to the explorer with the series and the time around it', () => {
    const a = alert({ data: { chart: '/api/v1/series?entity=urn%3Angsi-ld%3AX%3A1&attribute=waterLevel&from=2026-11-22T00:00:00Z&to=2026-11-22T02:00:00Z' } });
    const u = new URL(chartLink(a) as string, 'http://x');
    expect(u.pathname).toBe('/explorer');
    expect(u.searchParams.get('entity')).toBe(a.entity);
    expect(u.searchParams.get('attribute')).toBe('waterLevel');
    expect(u.searchParams.get('from')).toBe('2026-11-22T00:00:00Z');
    expect(chartLink(alert({ data: {} }))).toBe('/explorer?entity=urn%3Angsi-ld%3AWaterObserved%3Acau-ong-co&attribute=waterLevel');
    expect(chartLink(alert({ entity: null }))).toBeNull();
    // A camera reporting "offline" has no numbers to chart.
    expect(chartLink(alert({ attribute: 'status', value: null, data: { values: [{ time: 't', value: 'offline' }] } }))).toBeNull();
  });

  test('values for the sparkline', () => {
    expect(firedValues(alert({ data: { values: [{ time: 't', value: 1 }, { time: 't', value: 'x' }, { time: 't', value: true }] } }))).toEqual([1, 1]);
    expect(firedValues(alert())).toEqual([]);
  });
});

describe('live alerts and incidents', () => {
  test('reach the subscriptions the server names, with the kind of change', () => {
    const c = new LiveClient({ url: 'ws://x', socket: () => ({ readyState: 0, send() {}, close() {}, onopen: null, onclose: null, onerror: null, onmessage: null }) });
    const got: string[] = [];
    c.subscribe({}, { alerts: (items, change) => got.push(`a${items[0].id}:${change}`) });
    c.subscribe({}, { incidents: (items, change) => got.push(`i${items[0].id}:${change}`) });
    c.onMessage(JSON.stringify({ type: 'alerts', subscriptions: ['s1'], change: 'opened', items: [alert({ id: 7 })] }));
    c.onMessage(JSON.stringify({ type: 'incidents', subscriptions: ['s2'], change: 'status', items: [{ id: 3 }] }));
    c.onMessage(JSON.stringify({ type: 'alerts', subscriptions: ['s2'], change: 'opened', items: [alert({ id: 8 })] }));
    expect(got).toEqual(['a7:opened', 'i3:status']);
  });
});
