// The live stream (/api/v1/live): one WebSocket for the whole page, shared by
// every view through subscriptions. It reconnects by itself with a growing
// delay, re-sends the subscriptions, and tells the views to resync (refetch)
// after a reconnect or a `lagged` notice, since events may have been missed.

import type { IndicatorValue, LiveObservation } from './types';
import type { Alert, Incident } from './ops';

export interface LiveFilter {
  domains?: string[];
  types?: string[];
  entities?: string[];
  admin_units?: string[];
  indicators?: string[];
  /** Only these kinds of message; all when absent. */
  messages?: ('observations' | 'indicator_values' | 'entities_changed' | 'alerts' | 'incidents')[];
}

export interface LiveHandlers {
  observations?: (items: LiveObservation[]) => void;
  indicatorValues?: (items: IndicatorValue[]) => void;
  entitiesChanged?: (ids: string[]) => void;
  /** Alerts opened or changed (`change`: opened, repeated, acknowledged, resolved, linked…). */
  alerts?: (items: Alert[], change: string) => void;
  /** Incidents created or changed (`change`: created, status, updated, comment, checklist…). */
  incidents?: (items: Incident[], change: string) => void;
  /** Events may have been missed (reconnect or lag): refetch current state. */
  resync?: () => void;
}

/** `idle`: not started or stopped on purpose (signed out); `closed`: lost, retrying. */
export type LiveState = 'idle' | 'connecting' | 'open' | 'closed';

/** The parts of WebSocket the client uses, so tests can pass a fake. */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export interface LiveOptions {
  url: string;
  socket?: (url: string) => SocketLike;
  /** Reports state changes and the delay before the next attempt. */
  onState?: (s: LiveState, retryInSecs: number) => void;
  /** Called before reconnecting; may redirect to sign-in on a dead session. */
  beforeReconnect?: () => Promise<void> | void;
  setTimeout?: (f: () => void, ms: number) => unknown;
  clearTimeout?: (h: unknown) => void;
  now?: () => number;
  random?: () => number;
  pingEverySecs?: number;
  /** No message for this long means the connection is dead. */
  silenceSecs?: number;
}

interface Sub {
  id: string;
  filter: LiveFilter;
  handlers: LiveHandlers;
}

/** Delay before reconnect attempt `n` (0-based): 1, 2, 4, 8, 16, 30, 30 … s, ±20 %. */
export function backoffSecs(n: number, random: () => number = Math.random): number {
  const base = Math.min(30, 2 ** Math.min(n, 5));
  return Math.max(0.5, base * (0.8 + 0.4 * random()));
}

/** Whether an observation matches a filter (admin units are left to the server). */
export function matchesObservation(f: LiveFilter, o: LiveObservation): boolean {
  if (f.indicators?.length) return false;
  if (f.domains?.length && !f.domains.includes(o.domain)) return false;
  if (f.types?.length && !f.types.includes(o.entity_type)) return false;
  if (f.entities?.length && !f.entities.includes(o.entity)) return false;
  return true;
}

/** Whether an indicator value matches a filter. */
export function matchesIndicator(f: LiveFilter, v: IndicatorValue): boolean {
  if (f.types?.length || f.entities?.length) return false;
  if (f.domains?.length && !(v.domain && f.domains.includes(v.domain))) return false;
  if (f.indicators?.length && !f.indicators.includes(v.indicator)) return false;
  return true;
}

export class LiveClient {
  private ws: SocketLike | null = null;
  private subs = new Map<string, Sub>();
  private seq = 0;
  private attempts = 0;
  private everOpened = false;
  private stopped = true;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private lastMessage = 0;
  state: LiveState = 'idle';
  /** Messages received, for diagnostics and tests. */
  received = 0;

  constructor(private readonly opt: LiveOptions) {}

  private get timers() {
    return {
      set: this.opt.setTimeout ?? ((f: () => void, ms: number) => globalThis.setTimeout(f, ms)),
      clear: this.opt.clearTimeout ?? ((h: unknown) => globalThis.clearTimeout(h as number)),
      now: this.opt.now ?? (() => Date.now()),
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
      ws.close(1000, 'page closed');
    }
    this.setState('idle', 0);
  }

  /** Reconnects at once (the "reconnect now" button). */
  reconnectNow(): void {
    if (this.stopped || this.state === 'open') return;
    this.clearTimers();
    this.connect();
  }

  /** Subscribes; returns a function that unsubscribes. */
  subscribe(filter: LiveFilter, handlers: LiveHandlers): () => void {
    const id = `s${++this.seq}`;
    const sub: Sub = { id, filter, handlers };
    this.subs.set(id, sub);
    this.sendSub(sub);
    return () => {
      if (this.subs.delete(id) && this.ws && this.state === 'open') {
        this.ws.send(JSON.stringify({ op: 'unsubscribe', id }));
      }
    };
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  private sendSub(s: Sub): void {
    if (this.ws && this.state === 'open') {
      this.ws.send(JSON.stringify({ op: 'subscribe', id: s.id, ...s.filter }));
    }
  }

  private setState(s: LiveState, retry: number): void {
    this.state = s;
    this.opt.onState?.(s, retry);
  }

  private clearTimers(): void {
    const { clear } = this.timers;
    if (this.retryTimer !== null) clear(this.retryTimer);
    if (this.pingTimer !== null) clear(this.pingTimer);
    this.retryTimer = this.pingTimer = null;
  }

  private connect(): void {
    this.setState('connecting', 0);
    let ws: SocketLike;
    try {
      ws = this.opt.socket ? this.opt.socket(this.opt.url) : (new WebSocket(this.opt.url) as unknown as SocketLike);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempts = 0;
      this.lastMessage = this.timers.now();
      this.setState('open', 0);
      for (const s of this.subs.values()) this.sendSub(s);
      this.schedulePing();
      if (reconnected) this.resyncAll();
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = backoffSecs(this.attempts++, this.opt.random);
    this.setState('closed', Math.round(delay));
    this.retryTimer = this.timers.set(async () => {
      this.retryTimer = null;
      if (this.stopped) return;
      try {
        await this.opt.beforeReconnect?.();
      } catch {
        // The probe failing (server still down) is no reason not to try.
      }
      if (!this.stopped && this.state !== 'open') this.connect();
    }, delay * 1000);
  }

  private schedulePing(): void {
    const every = (this.opt.pingEverySecs ?? 20) * 1000;
    const silence = (this.opt.silenceSecs ?? 60) * 1000;
    this.pingTimer = this.timers.set(() => {
      this.pingTimer = null;
      const ws = this.ws;
      if (!ws || this.state !== 'open') return;
      if (this.timers.now() - this.lastMessage > silence) {
        // A half-open connection: drop it and reconnect.
        ws.close(4000, 'silent');
        ws.onclose?.({});
        return;
      }
      ws.send('{"op":"ping"}');
      this.schedulePing();
    }, every);
  }

  private resyncAll(): void {
    for (const s of this.subs.values()) s.handlers.resync?.();
  }

  /** Handles one message (public for tests). */
  onMessage(data: unknown): void {
    this.lastMessage = this.timers.now();
    this.received++;
    if (typeof data !== 'string') return;
    let m: { type?: string; items?: unknown[]; subscriptions?: string[]; entities?: string[]; change?: string };
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m.type) {
      case 'observations': {
        const items = (m.items ?? []) as LiveObservation[];
        for (const id of m.subscriptions ?? []) {
          const s = this.subs.get(id);
          if (!s?.handlers.observations) continue;
          const mine = items.filter((o) => matchesObservation(s.filter, o));
          if (mine.length) s.handlers.observations(mine);
        }
        break;
      }
      case 'indicator_values': {
        const items = (m.items ?? []) as IndicatorValue[];
        for (const id of m.subscriptions ?? []) {
          const s = this.subs.get(id);
          if (!s?.handlers.indicatorValues) continue;
          const mine = items.filter((v) => matchesIndicator(s.filter, v));
          if (mine.length) s.handlers.indicatorValues(mine);
        }
        break;
      }
      case 'alerts':
      case 'incidents': {
        // The server matched them against each subscription already.
        const key = m.type;
        for (const id of m.subscriptions ?? []) {
          const h = this.subs.get(id)?.handlers;
          if (key === 'alerts') h?.alerts?.((m.items ?? []) as Alert[], m.change ?? '');
          else h?.incidents?.((m.items ?? []) as Incident[], m.change ?? '');
        }
        break;
      }
      case 'entities_changed':
        for (const s of this.subs.values()) s.handlers.entitiesChanged?.(m.entities ?? []);
        break;
      case 'lagged':
        this.resyncAll();
        break;
      default:
        // hello, subscribed, pong, error: nothing to do.
        break;
    }
  }
}

/** The page's live client (created on first use). */
let shared: LiveClient | null = null;

export function liveUrl(loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/v1/live`;
}

export function setSharedLive(c: LiveClient | null): void {
  shared = c;
}

export function live(): LiveClient | null {
  return shared;
}
