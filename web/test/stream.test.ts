import { describe, expect, it } from 'vitest';
import { LiveClient, StreamState, type SocketLike } from '../src/stream';
import type { ScoreUpdate } from '../src/types';

function update(seq: number, lead = `lead-${seq}`, score = 10): string {
  const u: ScoreUpdate = {
    type: 'score_update',
    seq,
    tenant_id: 't1',
    lead_id: lead,
    probability: score / 100,
    score,
    band: score >= 50 ? 'hot' : score >= 20 ? 'warm' : 'cold',
    confidence: 0.5,
    events_count: 1,
    reasons: [],
    model: 'm1',
    scored_at: '2026-11-26T15:38:15Z',
    latency_us: 9.4,
  };
  return JSON.stringify(u);
}

function seqs(effect: ReturnType<StreamState['onMessage']>): number[] {
  return effect.kind === 'updates' ? effect.updates.map((u) => u.seq) : [];
}

describe('StreamState ordering', () => {
  it('applies in-order frames and advances seq', () => {
    const s = new StreamState();
    expect(seqs(s.onMessage(update(5)))).toEqual([5]);
    expect(seqs(s.onMessage(update(6)))).toEqual([6]);
    expect(s.seq).toBe(6);
  });

  it('releases a match_update in seq order as its lead, beside the score updates', () => {
    const s = new StreamState();
    expect(seqs(s.onMessage(update(1)))).toEqual([1]);
    const match = JSON.stringify({ type: 'match_update', seq: 2, tenant_id: 't1', lead_id: 'x', matches: [] });
    expect(s.onMessage(update(3)).kind).toBe('none'); // waits for 2
    const released = s.onMessage(match);
    expect(seqs(released)).toEqual([3]);
    expect(released.kind === 'updates' ? released.matchLeads : null).toEqual(['x']);
    expect(s.seq).toBe(3);
    expect(s.pendingCount).toBe(0);
    expect(s.onMessage(JSON.stringify({ type: 'match_update', seq: 'x' })).kind).toBe('none');
    // Alone, and twice for one lead in one release: the lead once, no scores.
    expect(s.onMessage(JSON.stringify({ type: 'match_update', seq: 5, lead_id: 'y' })).kind).toBe('none');
    const alone = s.onMessage(JSON.stringify({ type: 'match_update', seq: 4, lead_id: 'y' }));
    expect(alone).toEqual({ kind: 'updates', updates: [], matchLeads: ['y'] });
  });

  it('drops duplicates, including replays of already applied seqs', () => {
    const s = new StreamState();
    s.onMessage(update(1));
    s.onMessage(update(2));
    expect(s.onMessage(update(2)).kind).toBe('none');
    expect(s.onMessage(update(1)).kind).toBe('none');
    expect(s.seq).toBe(2);
  });

  it('holds an out-of-order frame until the gap fills, then releases in order', () => {
    const s = new StreamState();
    s.onMessage(update(1));
    expect(s.onMessage(update(3)).kind).toBe('none');
    expect(s.onMessage(update(4)).kind).toBe('none');
    expect(s.pendingCount).toBe(2);
    expect(s.onMessage(update(3)).kind).toBe('none'); // duplicate of a pending frame
    expect(seqs(s.onMessage(update(2)))).toEqual([2, 3, 4]);
    expect(s.pendingCount).toBe(0);
    expect(s.seq).toBe(4);
  });

  it('asks to reconnect when the gap grows too large', () => {
    const s = new StreamState();
    s.onMessage(update(1));
    let last = s.onMessage(update(3));
    for (let i = 4; i < 3 + 300 && last.kind !== 'reconnect'; ++i) last = s.onMessage(update(i));
    expect(last.kind).toBe('reconnect');
    expect(s.seq).toBe(1);
    expect(s.pendingCount).toBe(0);
  });

  it('ignores malformed frames and unknown types', () => {
    const s = new StreamState();
    expect(s.onMessage('not json').kind).toBe('none');
    expect(s.onMessage('null').kind).toBe('none');
    expect(s.onMessage('{"type":"score_update","seq":-1,"lead_id":"x"}').kind).toBe('none');
    expect(s.onMessage('{"type":"score_update","seq":1.5,"lead_id":"x"}').kind).toBe('none');
    expect(s.onMessage('{"type":"score_update","seq":1}').kind).toBe('none');
    expect(s.seq).toBe(0);
    // Another type reaches no page but holds its place in the seq order.
    expect(s.onMessage('{"type":"match_update","seq":1}').kind).toBe('none');
    expect(s.seq).toBe(1);
  });

  it('resync forgets the seq so the next frame sets a new base', () => {
    const s = new StreamState();
    s.onMessage(update(7));
    expect(s.onMessage('{"type":"resync"}').kind).toBe('resync');
    expect(s.seq).toBe(0);
    expect(seqs(s.onMessage(update(70000)))).toEqual([70000]);
  });

  it('overflow asks for an immediate reconnect', () => {
    expect(new StreamState().onMessage('{"type":"overflow"}').kind).toBe('reconnect');
  });
});

describe('StreamState reconnect', () => {
  it('resumes with since= the last applied seq', () => {
    const s = new StreamState();
    expect(s.url('http://h:1', 'demo co', 'tok')).toBe('ws://h:1/api/realtime/scoring/demo%20co?token=tok');
    s.onMessage(update(41));
    s.onMessage(update(42));
    expect(s.url('https://h', 'demo', 'a.b.c')).toBe('wss://h/api/realtime/scoring/demo?token=a.b.c&since=42');
  });

  it('backs off exponentially up to the cap and resets after a successful open', () => {
    const s = new StreamState({ initialMs: 500, maxMs: 4000, jitter: 0 });
    const delays = [1, 2, 3, 4, 5].map(() => {
      const d = s.onClose(1006);
      return d.kind === 'reconnect' ? d.delayMs : -1;
    });
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000]);
    s.onOpen();
    const d = s.onClose(1001);
    expect(d).toEqual({ kind: 'reconnect', delayMs: 500 });
  });

  it('jitter stays within its share of the delay', () => {
    const low = new StreamState({ initialMs: 1000, maxMs: 1000, jitter: 0.2 }, () => 0).onClose(1006);
    const high = new StreamState({ initialMs: 1000, maxMs: 1000, jitter: 0.2 }, () => 1).onClose(1006);
    expect(low).toEqual({ kind: 'reconnect', delayMs: 800 });
    expect(high).toEqual({ kind: 'reconnect', delayMs: 1200 });
  });

  it('signs out on a bad token or another tenant instead of retrying', () => {
    const a = new StreamState();
    expect(a.onClose(4001).kind).toBe('signout');
    expect(a.state).toBe('signed-out');
    const b = new StreamState();
    const d = b.onClose(4003);
    expect(d.kind === 'signout' && /another/.test(d.message)).toBe(true);
  });
});

class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closedWith: number | null = null;
  constructor(readonly url: string) {}
  close(code?: number): void {
    this.closedWith = code ?? 1000;
  }
  open() {
    this.onopen?.({});
  }
  send(text: string) {
    this.onmessage?.({ data: text });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  let nextId = 1;
  const applied: number[] = [];
  const states: string[] = [];
  const signouts: string[] = [];
  let resyncs = 0;
  const client = new LiveClient({
    origin: 'http://127.0.0.1:8080',
    tenant: 'demo',
    token: 'tok',
    openSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.push({ fn, ms, id });
      return id;
    },
    clearTimer: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    onUpdates: (us) => applied.push(...us.map((u) => u.seq)),
    onResync: () => {
      resyncs += 1;
    },
    onState: (s) => states.push(s),
    onSignout: (m) => signouts.push(m),
    gapTimeoutMs: 1500,
  });
  const fire = () => {
    const t = timers.shift();
    t?.fn();
    return t;
  };
  return { client, sockets, timers, applied, states, signouts, fire, resyncs: () => resyncs };
}

describe('LiveClient', () => {
  it('reconnects after a drop with since= and loses nothing', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send(update(1));
    h.sockets[0].send(update(2));
    h.sockets[0].drop(1006);
    expect(h.states.at(-1)).toBe('reconnecting');
    const t = h.fire();
    expect(t?.ms).toBeGreaterThan(0);
    expect(h.sockets[1].url).toContain('since=2');
    h.sockets[1].open();
    expect(h.states.at(-1)).toBe('live');
    // The server replays 2 again (harmless) and then 3.
    h.sockets[1].send(update(2));
    h.sockets[1].send(update(3));
    expect(h.applied).toEqual([1, 2, 3]);
  });

  it('reconnects with since when a gap does not close in time', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send(update(10));
    h.sockets[0].send(update(12));
    expect(h.applied).toEqual([10]);
    expect(h.timers.map((t) => t.ms)).toEqual([1500]);
    h.fire();
    expect(h.sockets[0].closedWith).toBe(1000);
    expect(h.sockets[1].url).toContain('since=10');
    h.sockets[1].open();
    h.sockets[1].send(update(11));
    h.sockets[1].send(update(12));
    expect(h.applied).toEqual([10, 11, 12]);
  });

  it('a gap that closes in time cancels the timer', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send(update(1));
    h.sockets[0].send(update(3));
    expect(h.timers.length).toBe(1);
    h.sockets[0].send(update(2));
    expect(h.timers.length).toBe(0);
    expect(h.applied).toEqual([1, 2, 3]);
  });

  it('overflow reconnects at once with since', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send(update(5));
    h.sockets[0].send('{"type":"overflow"}');
    expect(h.sockets.length).toBe(2);
    expect(h.sockets[1].url).toContain('since=5');
  });

  it('resync is passed on to reload the snapshot', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    h.sockets[0].send('{"type":"resync"}');
    expect(h.resyncs()).toBe(1);
  });

  it('reconnecting before any seq was seen reloads the snapshot instead', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].open();
    expect(h.resyncs()).toBe(0);
    h.sockets[0].drop(1006);
    h.fire();
    expect(h.sockets[1].url).not.toContain('since=');
    h.sockets[1].open();
    expect(h.resyncs()).toBe(1);
  });

  it('an expired token signs out and never retries', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].drop(4001);
    expect(h.signouts.length).toBe(1);
    expect(h.timers.length).toBe(0);
    expect(h.sockets.length).toBe(1);
  });

  it('stop closes the socket and cancels the pending retry', () => {
    const h = harness();
    h.client.start();
    h.sockets[0].drop(1006);
    expect(h.timers.length).toBe(1);
    h.client.stop();
    expect(h.timers.length).toBe(0);
  });
});
