import { describe, expect, test } from 'vitest';
import { LiveClient, backoffSecs, matchesObservation, type SocketLike } from './live';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  closed = false;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  send(d: string) {
    this.sent.push(d);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
  receive(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { at: number; f: () => void; id: number }[] = [];
  let now = 0;
  let seq = 0;
  const states: string[] = [];
  const client = new LiveClient({
    url: 'ws://x/api/v1/live',
    socket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    onState: (s) => states.push(s),
    setTimeout: (f, ms) => {
      const id = ++seq;
      timers.push({ at: now + ms, f, id });
      return id;
    },
    clearTimeout: (h) => {
      const i = timers.findIndex((t) => t.id === h);
      if (i >= 0) timers.splice(i, 1);
    },
    now: () => now,
    random: () => 0.5,
  });
  const advance = async (ms: number) => {
    now += ms;
    for (;;) {
      const due = timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers.splice(timers.indexOf(due), 1);
      due.f();
      await Promise.resolve();
      await Promise.resolve();
    }
  };
  return { client, sockets, states, advance };
}

describe('live client', () => {
  test('subscribes on open and routes items to the matching subscription only', () => {
    const { client, sockets } = harness();
    const env: string[] = [];
    const traffic: string[] = [];
    client.subscribe({ domains: ['environment'] }, { observations: (i) => env.push(...i.map((o) => o.entity)) });
    client.subscribe({ domains: ['traffic'] }, { observations: (i) => traffic.push(...i.map((o) => o.entity)) });
    client.start();
    sockets[0].open();
    expect(sockets[0].sent.map((s) => JSON.parse(s).op)).toEqual(['subscribe', 'subscribe']);
    sockets[0].receive({
      type: 'observations',
      subscriptions: ['s1', 's2'],
      items: [
        { entity: 'a', attribute: 'pm25', time: 't', value: 1, entity_type: 'X', domain: 'environment' },
        { entity: 'b', attribute: 'flow', time: 't', value: 2, entity_type: 'Y', domain: 'traffic' },
      ],
    });
    expect(env).toEqual(['a']);
    expect(traffic).toEqual(['b']);
  });

  test('reconnects with growing delays, resubscribes and asks views to resync', async () => {
    const { client, sockets, states, advance } = harness();
    let resyncs = 0;
    client.subscribe({}, { resync: () => resyncs++ });
    client.start();
    sockets[0].open();
    expect(resyncs).toBe(0);
    sockets[0].drop();
    expect(states.at(-1)).toBe('closed');
    await advance(999);
    expect(sockets.length).toBe(1);
    await advance(1);
    expect(sockets.length).toBe(2);
    sockets[1].drop();
    await advance(1999);
    expect(sockets.length).toBe(2);
    await advance(1);
    expect(sockets.length).toBe(3);
    sockets[2].open();
    expect(states.at(-1)).toBe('open');
    expect(JSON.parse(sockets[2].sent[0])).toMatchObject({ op: 'subscribe', id: 's1' });
    expect(resyncs).toBe(1);
  });

  test('a lagged notice triggers a resync; a silent connection is dropped', async () => {
    const { client, sockets, advance } = harness();
    let resyncs = 0;
    client.subscribe({}, { resync: () => resyncs++ });
    client.start();
    sockets[0].open();
    sockets[0].receive({ type: 'lagged', missed_events: 12 });
    expect(resyncs).toBe(1);
    await advance(20_000);
    expect(sockets[0].sent.at(-1)).toBe('{"op":"ping"}');
    await advance(60_000);
    expect(sockets[0].closed).toBe(true);
  });

  test('subscriptions made before the start are sent on open and survive a stop and start', () => {
    const { client, sockets } = harness();
    client.subscribe({ domains: ['water'] }, {});
    expect(client.state).toBe('idle');
    client.start();
    sockets[0].open();
    expect(JSON.parse(sockets[0].sent[0])).toMatchObject({ op: 'subscribe', domains: ['water'] });
    client.stop();
    client.start();
    sockets[1].open();
    expect(JSON.parse(sockets[1].sent[0])).toMatchObject({ op: 'subscribe', domains: ['water'] });
  });

  test('unsubscribe tells the server; stop closes for good', () => {
    const { client, sockets } = harness();
    const off = client.subscribe({}, {});
    client.start();
    sockets[0].open();
    off();
    expect(JSON.parse(sockets[0].sent.at(-1) ?? '')).toEqual({ op: 'unsubscribe', id: 's1' });
    client.stop();
    expect(sockets[0].closed).toBe(true);
    expect(client.state).toBe('idle');
  });

  test('backoff and filters', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map((n) => backoffSecs(n, () => 0.5))).toEqual([1, 2, 4, 8, 16, 30, 30]);
    const o = { entity: 'e', attribute: 'a', time: 't', value: 1, entity_type: 'T', domain: 'd' };
    expect(matchesObservation({}, o)).toBe(true);
    expect(matchesObservation({ types: ['U'] }, o)).toBe(false);
    expect(matchesObservation({ indicators: ['x'] }, o)).toBe(false);
  });
});
