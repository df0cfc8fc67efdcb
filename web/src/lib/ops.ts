// Operations: the shapes of alerts and incidents (/api/v1/alerts,
// /api/v1/incidents) and the console's logic around them, kept apart from
// the views so it can be tested: filters, live merging, SLA timers and how
// each timeline entry reads in Vietnamese or English.

import { translate } from './i18n.svelte';
import { formatDateTime, formatNumber } from './format';
import { messages, type Lang, type MessageKey } from './messages';

export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type AlertStatus = 'open' | 'acknowledged' | 'resolved';
export type IncidentStatus = 'new' | 'assigned' | 'in_progress' | 'resolved' | 'closed' | 'reopened';

/** Most severe first. */
export const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low'];
export const ALERT_STATUSES: AlertStatus[] = ['open', 'acknowledged', 'resolved'];
export const INCIDENT_STATUSES: IncidentStatus[] = ['new', 'assigned', 'in_progress', 'reopened', 'resolved', 'closed'];
/** Statuses of a case still being handled (shown on the map). */
export const ACTIVE_INCIDENT: IncidentStatus[] = ['new', 'assigned', 'in_progress', 'reopened'];

export const SEVERITY_ICON: Record<Severity, string> = { critical: '✕', high: '!', medium: '!', low: 'i' };

export interface Alert {
  id: number;
  rule: string;
  key: string;
  severity: Severity;
  status: AlertStatus;
  title: string;
  domain?: string | null;
  admin_unit?: string | null;
  entity?: string | null;
  entity_type?: string | null;
  attribute?: string | null;
  source?: string | null;
  indicator?: string | null;
  location?: [number, number] | null;
  value?: number | null;
  last_value?: number | null;
  data: AlertData;
  fired_at: string;
  opened_at: string;
  last_seen_at: string;
  occurrences: number;
  acknowledged_at?: string | null;
  acknowledged_by?: string | null;
  resolved_at?: string | null;
  resolved_by?: string | null;
  resolution?: string | null;
  incident?: number | null;
}

export interface AlertData {
  condition?: Record<string, unknown> & { kind?: string };
  value?: number | null;
  at?: string;
  values?: { time: string; value: unknown }[];
  chart?: string;
  [k: string]: unknown;
}

export interface AlertStep {
  alert: number;
  action: 'opened' | 'acknowledged' | 'resolved' | 'commented' | 'linked';
  by: string;
  at: string;
  comment?: string | null;
}

export interface AlertDetail extends Alert {
  steps: AlertStep[];
}

export interface ChecklistItem {
  step: string;
  done: boolean;
  done_by?: string | null;
  done_at?: string | null;
}

export interface Incident {
  id: number;
  title: string;
  type: string;
  severity: Severity;
  status: IncidentStatus;
  origin: string;
  origin_ref?: string | null;
  description?: string | null;
  domain?: string | null;
  admin_unit?: string | null;
  location?: [number, number] | null;
  agency?: string | null;
  assignee?: string | null;
  created_at: string;
  created_by: string;
  updated_at: string;
  respond_by?: string | null;
  responded_at?: string | null;
  resolve_by?: string | null;
  resolved_at?: string | null;
  closed_at?: string | null;
  next_check_at?: string | null;
  escalation_level: number;
  checklist: ChecklistItem[];
  alerts: number[];
  version: number;
}

export interface TimelineEntry {
  id: number;
  incident: number;
  at: string;
  by: string;
  kind: string;
  text?: string | null;
  data: Record<string, unknown>;
}

export interface Attachment {
  id: number;
  incident: number;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  uploaded_by: string;
  uploaded_at: string;
}

export interface IncidentDetail extends Incident {
  next_statuses: IncidentStatus[];
  timeline: TimelineEntry[];
  attachments: Attachment[];
}

export interface SopTemplate {
  incident_type: string;
  name: string;
  steps: string[];
}

export interface Agency {
  code: string;
  name: string;
  name_en: string;
  admin_unit?: string | null;
}

export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

// ---------------------------------------------------------------- filters

export interface AlertFilter {
  /** Statuses shown; empty means all. */
  status: AlertStatus[];
  /** Least severity, or '' for any. */
  severity: Severity | '';
  domain: string;
  admin_unit: string;
}

export const DEFAULT_ALERT_FILTER: AlertFilter = { status: ['open', 'acknowledged'], severity: '', domain: '', admin_unit: '' };

/** Query parameters of /alerts for a filter (empty values left out by `query`). */
export function alertParams(f: AlertFilter): Record<string, string> {
  return {
    status: f.status.length && f.status.length < ALERT_STATUSES.length ? f.status.join(',') : '',
    severity: f.severity,
    domain: f.domain,
    admin_unit: f.admin_unit,
  };
}

/** The filter in a page's query string (so a filtered feed can be linked), and back. */
export function alertFilterFromSearch(search: URLSearchParams): AlertFilter {
  const status = (search.get('status') ?? '').split(',').filter((s): s is AlertStatus => (ALERT_STATUSES as string[]).includes(s));
  const sev = search.get('severity') ?? '';
  return {
    status: search.has('status') ? status : [...DEFAULT_ALERT_FILTER.status],
    severity: (SEVERITIES as string[]).includes(sev) ? (sev as Severity) : '',
    domain: search.get('domain') ?? '',
    admin_unit: search.get('admin_unit') ?? '',
  };
}

export function alertFilterToSearch(f: AlertFilter): string {
  const q = new URLSearchParams();
  const same = f.status.length === DEFAULT_ALERT_FILTER.status.length && f.status.every((s) => DEFAULT_ALERT_FILTER.status.includes(s));
  if (!same) q.set('status', f.status.join(','));
  if (f.severity) q.set('severity', f.severity);
  if (f.domain) q.set('domain', f.domain);
  if (f.admin_unit) q.set('admin_unit', f.admin_unit);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Whether a live alert belongs in the feed. Admin units are matched with
 * their descendants (`within`: the filter's unit and everything under it),
 * as the server does.
 */
export function matchesAlert(f: AlertFilter, a: Alert, within?: Set<string> | null): boolean {
  if (f.status.length && !f.status.includes(a.status)) return false;
  if (f.severity && severityRank(a.severity) > severityRank(f.severity)) return false;
  if (f.domain && a.domain !== f.domain) return false;
  if (f.admin_unit) {
    const units = within ?? new Set([f.admin_unit]);
    if (!a.admin_unit || !units.has(a.admin_unit)) return false;
  }
  return true;
}

/**
 * A live change applied to the feed: an alert already shown is replaced (or
 * dropped when it no longer matches the filter); a new one that matches is
 * added. Newest first, as the API lists them.
 */
export function mergeAlert(list: Alert[], a: Alert, f: AlertFilter, within?: Set<string> | null): Alert[] {
  const i = list.findIndex((x) => x.id === a.id);
  const fits = matchesAlert(f, a, within);
  if (i >= 0) {
    if (!fits) return list.filter((x) => x.id !== a.id);
    const out = list.slice();
    out[i] = a;
    return out;
  }
  if (!fits) return list;
  const out = [a, ...list];
  out.sort((x, y) => y.opened_at.localeCompare(x.opened_at) || y.id - x.id);
  return out;
}

export interface IncidentFilter {
  /** Statuses shown; empty means all. */
  status: IncidentStatus[];
  severity: Severity | '';
  type: string;
  agency: string;
  admin_unit: string;
}

export const DEFAULT_INCIDENT_FILTER: IncidentFilter = { status: [...ACTIVE_INCIDENT, 'resolved'], severity: '', type: '', agency: '', admin_unit: '' };

export function incidentParams(f: IncidentFilter, withStatus = true): Record<string, string> {
  return {
    status: withStatus && f.status.length && f.status.length < INCIDENT_STATUSES.length ? f.status.join(',') : '',
    severity: f.severity,
    type: f.type,
    agency: f.agency,
    admin_unit: f.admin_unit,
  };
}

/** Incidents per status, and whether the count stopped short (`max` reached). */
export function countByStatus(items: Pick<Incident, 'status'>[], truncated = false): Record<IncidentStatus, string> {
  const n = Object.fromEntries(INCIDENT_STATUSES.map((s) => [s, 0])) as Record<IncidentStatus, number>;
  for (const i of items) n[i.status] = (n[i.status] ?? 0) + 1;
  return Object.fromEntries(INCIDENT_STATUSES.map((s) => [s, `${n[s]}${truncated && n[s] > 0 ? '+' : ''}`])) as Record<IncidentStatus, string>;
}

// -------------------------------------------------------------------- SLA

export interface SlaState {
  /** `respond`: handling must start; `resolve`: must be resolved; `done`: resolved or closed; `none`: no timer. */
  stage: 'respond' | 'resolve' | 'done' | 'none';
  deadline: string | null;
  /** Seconds left (negative once breached); null when no timer runs. */
  left: number | null;
  breached: boolean;
}

/** Where an incident stands against its SLA at `now` (ms). */
export function slaState(i: Pick<Incident, 'status' | 'respond_by' | 'responded_at' | 'resolve_by' | 'resolved_at' | 'closed_at'>, now: number): SlaState {
  if (i.status === 'resolved' || i.status === 'closed') {
    const end = i.resolved_at ?? i.closed_at;
    const late = Boolean(i.resolve_by && end && Date.parse(end) > Date.parse(i.resolve_by));
    return { stage: 'done', deadline: i.resolve_by ?? null, left: null, breached: late };
  }
  const stage = !i.responded_at && i.respond_by ? 'respond' : i.resolve_by ? 'resolve' : null;
  if (!stage) return { stage: 'none', deadline: null, left: null, breached: false };
  const deadline = (stage === 'respond' ? i.respond_by : i.resolve_by) as string;
  const left = Math.round((Date.parse(deadline) - now) / 1000);
  return { stage, deadline, left, breached: left < 0 };
}

/** A span in the two largest units: "1 giờ 05 phút", "2 ngày 3 giờ", "45 giây". */
export function formatSpan(lang: Lang, secs: number): string {
  const s = Math.max(0, Math.floor(Math.abs(secs)));
  const w = lang === 'vi' ? { d: 'ngày', h: 'giờ', m: 'phút', s: 'giây' } : { d: 'd', h: 'h', m: 'min', s: 's' };
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const n = (x: number) => formatNumber(lang, x, 0);
  const pad = (x: number) => String(x).padStart(2, '0');
  if (d) return h ? `${n(d)} ${w.d} ${h} ${w.h}` : `${n(d)} ${w.d}`;
  if (h) return `${h} ${w.h} ${pad(m)} ${w.m}`;
  if (m) return `${m} ${w.m} ${pad(r)} ${w.s}`;
  return `${r} ${w.s}`;
}

/** The SLA timer in words: "Còn 1 giờ 05 phút để tiếp nhận" or "Quá hạn xử lý 12 phút 03 giây". */
export function slaText(lang: Lang, s: SlaState): string {
  if (s.stage === 'none') return translate(lang, 'sla.none');
  if (s.stage === 'done') return translate(lang, s.breached ? 'sla.done_late' : 'sla.done_ok');
  const span = formatSpan(lang, s.left ?? 0);
  const key = `sla.${s.breached ? 'breached' : 'left'}_${s.stage}` as MessageKey;
  return translate(lang, key, { span });
}

// ------------------------------------------------------------- who, what

/** `user:lan` → lan; `rule:x` → "quy tắc x"; `system` → "hệ thống". */
export function actorName(lang: Lang, by: string | null | undefined): string {
  if (!by) return '—';
  if (by.startsWith('user:')) return by.slice(5);
  if (by.startsWith('rule:')) return translate(lang, 'ops.by_rule', { id: by.slice(5) });
  if (by === 'system') return translate(lang, 'ops.by_system');
  return by;
}

export const statusLabel = (lang: Lang, s: IncidentStatus | AlertStatus | string) => translate(lang, `st.${s}` as MessageKey);

/** What a status move is called on its button. */
export function actionKey(to: IncidentStatus): MessageKey {
  return (
    {
      new: 'st.new',
      assigned: 'inc.act_assigned',
      in_progress: 'inc.act_in_progress',
      resolved: 'inc.act_resolved',
      closed: 'inc.act_closed',
      reopened: 'inc.act_reopened',
    } as const
  )[to];
}

/** The move that usually comes next, shown as the main button. */
export function nextStep(s: IncidentStatus): IncidentStatus | null {
  return ({ new: 'in_progress', assigned: 'in_progress', reopened: 'in_progress', in_progress: 'resolved', resolved: 'closed', closed: null } as const)[s];
}

/** Where an incident came from, in words (unknown origins as they are). */
export function originLabel(lang: Lang, o: string): string {
  return `origin.${o}` in messages.vi ? translate(lang, `origin.${o}` as MessageKey) : o;
}

/** The condition that fired an alert, in a few symbols: "> 0,3", "avg 1h > 150", "im lặng > 5m". */
export function conditionText(lang: Lang, c: AlertData['condition']): string {
  if (!c) return '';
  const num = (v: unknown) => (typeof v === 'number' ? formatNumber(lang, v) : String(v));
  const parts: string[] = [];
  if (c.kind === 'aggregate' && c.agg) parts.push(`${c.agg} ${c.window ?? ''}`.trim());
  if (c.kind === 'rate_of_change' && c.window) parts.push(`Δ ${c.window}`);
  if (c.above !== undefined && c.above !== null) parts.push(`> ${num(c.above)}`);
  if (c.below !== undefined && c.below !== null) parts.push(`< ${num(c.below)}`);
  if (c.rise !== undefined && c.rise !== null) parts.push(`+${num(c.rise)}`);
  if (c.fall !== undefined && c.fall !== null) parts.push(`−${num(c.fall)}`);
  if (c.equals !== undefined && c.equals !== null) parts.push(`= ${String(c.equals)}`);
  if (c.kind === 'freshness') parts.push(translate(lang, 'ops.silent', { grace: String(c.grace ?? '') }));
  if (c.kind === 'indicator_status') parts.push(`≥ ${String(c.at_least ?? '')}`);
  if (c.kind === 'count_in_area') parts.push(`≥ ${num(c.at_least)} / ${String(c.window ?? '')}`);
  if (c.for) parts.push(translate(lang, 'ops.for', { d: String(c.for) }));
  return parts.join(' ');
}

/** Explorer link to the chart of the data that fired an alert (entity and attribute preselected, around the alert's time). */
export function chartLink(a: Pick<Alert, 'entity' | 'attribute' | 'data' | 'value'>): string | null {
  if (!a.entity || !a.attribute) return null;
  // The explorer charts numbers (and yes/no); a text state such as a camera's "offline" has no chart.
  if ((a.value === null || a.value === undefined) && firedValues(a).length === 0) return null;
  const q = new URLSearchParams({ entity: a.entity, attribute: a.attribute });
  if (a.data?.chart) {
    const c = new URLSearchParams(a.data.chart.split('?')[1] ?? '');
    const from = c.get('from');
    const to = c.get('to');
    if (from && to) {
      q.set('from', from);
      q.set('to', to);
    }
  }
  return `/explorer?${q.toString()}`;
}

/** Numbers of the data that fired an alert, for a sparkline. */
export function firedValues(a: Pick<Alert, 'data'>): number[] {
  return (a.data?.values ?? []).map((p) => (typeof p.value === 'number' ? p.value : typeof p.value === 'boolean' ? (p.value ? 1 : 0) : NaN)).filter(Number.isFinite);
}

const fmtSize = (lang: Lang, n: number) =>
  n >= 1048576 ? `${formatNumber(lang, n / 1048576, 1)} MB` : n >= 1024 ? `${formatNumber(lang, n / 1024, 0)} KB` : `${formatNumber(lang, n, 0)} B`;
export { fmtSize as formatSize };

/** One timeline entry in words (the comment or remark, if any, is shown apart). */
export function describeEntry(lang: Lang, e: TimelineEntry, names: { agency?: (code: string) => string } = {}): string {
  const d = e.data ?? {};
  const tr = (k: MessageKey, p?: Record<string, string | number>) => translate(lang, k, p);
  const ft = (v: unknown) => (typeof v === 'string' ? v : '');
  // Origins and field names are open-ended: unknown ones are shown as they are.
  const known = (prefix: string, v: string) => (`${prefix}.${v}` in messages.vi ? tr(`${prefix}.${v}` as MessageKey) : v);
  const agency = (c: unknown) => (typeof c === 'string' && c ? (names.agency?.(c) ?? c) : '—');
  switch (e.kind) {
    case 'created':
      return tr('tl.created', { origin: known('origin', ft(d.origin) || 'manual') });
    case 'status':
      return tr('tl.status', { from: statusLabel(lang, ft(d.from)), to: statusLabel(lang, ft(d.to)) });
    case 'assigned': {
      const ag = d.agency as { to?: string } | undefined;
      const as = d.assignee as { to?: string | null } | undefined;
      if (ag) return tr('tl.assigned_agency', { agency: agency(ag.to) });
      if (as) return as.to ? tr('tl.assigned_person', { person: as.to }) : tr('tl.unassigned');
      return tr('tl.assigned_agency', { agency: '—' });
    }
    case 'comment':
      return tr('tl.comment');
    case 'checklist':
      return tr(d.done ? 'tl.checked' : 'tl.unchecked', { n: Number(d.step ?? 0) + 1 });
    case 'alert_linked': {
      const ids = Array.isArray(d.alerts) ? (d.alerts as number[]) : [];
      return tr('tl.alert_linked', { ids: ids.map((x) => `#${x}`).join(', ') });
    }
    case 'attachment':
      return tr('tl.attachment', { name: ft(d.filename) });
    case 'escalated':
      return tr('tl.escalated', {
        level: Number(d.level ?? 0),
        name: ft(d.name),
        stage: tr(d.stage === 'respond' ? 'sla.stage_respond' : 'sla.stage_resolve'),
        deadline: typeof d.deadline === 'string' ? formatDateTime(lang, d.deadline) : '',
      });
    case 'updated':
      return tr('tl.updated', { fields: Object.keys(d).map((k) => known('field', k)).join(', ') });
    default:
      return e.kind;
  }
}

/**
 * The words to show under an entry: comments and remarks as people wrote
 * them. Checklist entries carry the step's label ("label: remark"); the
 * server's English notes on assignments and escalations are left out (the
 * entry's own line already says it in the reader's language).
 */
export function entryNote(e: TimelineEntry): string | null {
  if (!e.text) return null;
  if (e.kind === 'assigned' || e.kind === 'escalated' || e.kind === 'attachment') return null;
  return e.text;
}

/** A unit's code and the codes of every unit under it. */
export function unitsWithin(units: { code: string; parent?: string | null }[], code: string): Set<string> {
  const children = new Map<string, string[]>();
  for (const u of units) if (u.parent) children.set(u.parent, [...(children.get(u.parent) ?? []), u.code]);
  const out = new Set<string>();
  const stack = [code];
  while (stack.length) {
    const c = stack.pop() as string;
    if (out.has(c)) continue;
    out.add(c);
    stack.push(...(children.get(c) ?? []));
  }
  return out;
}
