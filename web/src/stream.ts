// The live score stream's state, free of the DOM and of real sockets so it
// can be unit tested: ordering by seq, duplicates, gaps, reconnect backoff and
// the `since` to resume from. LiveClient wires it to a WebSocket.
import type { ScoreUpdate } from './types';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'signed-out';

// What one incoming frame asks the page to do.
export type StreamEffect =
  // `matchLeads`: leads whose property matches moved (match_update frames
  // released in order with the scores), each once.
  | { kind: 'updates'; updates: ScoreUpdate[]; matchLeads: string[] }
  | { kind: 'resync' }
  | { kind: 'reconnect' }
  | { kind: 'none' };

// What a closed socket asks the page to do.
export type CloseDecision =
  | { kind: 'reconnect'; delayMs: number }
  | { kind: 'signout'; message: string };

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  // 0..1: the share of each delay that is randomised (spreads reconnect storms).
  jitter: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 500, maxMs: 15000, jitter: 0.2 };

// Holds out-of-order frames until the gap closes; past this many, the gap is
// treated as lost and the client reconnects with `since` so the server replays.
const kMaxPending = 256;

export class StreamState {
  private lastSeq = 0;
  private attempts = 0;
  // A score update, the lead of a match_update, or null: a frame of another
  // type that only holds its place in the tenant's seq order.
  private readonly pending = new Map<number, ScoreUpdate | { matchLead: string } | null>();
  state: ConnectionState = 'connecting';

  constructor(
    private readonly backoff: BackoffOptions = defaultBackoff,
    private readonly random: () => number = Math.random,
  ) {}

  // The last seq applied in order (0 before any).
  get seq(): number {
    return this.lastSeq;
  }

  // Frames waiting for a missing earlier seq.
  get pendingCount(): number {
    return this.pending.size;
  }

  // The WebSocket URL of the next connection: resumes after the last seq applied.
  url(origin: string, tenant: string, token: string): string {
    const ws = origin.replace(/^http/, 'ws');
    let u = `${ws}/api/realtime/scoring/${encodeURIComponent(tenant)}?token=${encodeURIComponent(token)}`;
    if (this.lastSeq > 0) u += `&since=${this.lastSeq}`;
    return u;
  }

  onOpen(): void {
    this.attempts = 0;
    this.state = 'live';
  }

  // Parses and orders one text frame. Frames already applied are dropped; a
  // frame ahead of the next expected seq waits until the gap is filled.
  onMessage(text: string): StreamEffect {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return { kind: 'none' };
    }
    if (!msg || typeof msg !== 'object') return { kind: 'none' };
    const type = (msg as { type?: unknown }).type;
    if (type === 'resync') {
      // The server no longer holds what we missed: the snapshot is the truth,
      // and the live frames that follow continue from here.
      this.pending.clear();
      this.lastSeq = 0;
      return { kind: 'resync' };
    }
    if (type === 'overflow') return { kind: 'reconnect' };
    // Every typed frame with a seq (score_update, match_update, ...) takes a
    // place in the tenant's order; score updates and the lead of a
    // match_update reach the page.
    const seq = (msg as { seq?: unknown }).seq;
    if (typeof type !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq <= 0) {
      return { kind: 'none' };
    }
    const isScore = type === 'score_update';
    const update = msg as ScoreUpdate;
    if (isScore && typeof update.lead_id !== 'string') return { kind: 'none' };
    if (this.lastSeq === 0) {
      // First frame of a fresh stream: it sets the base.
      this.lastSeq = seq - 1;
    }
    if (seq <= this.lastSeq || this.pending.has(seq)) return { kind: 'none' };
    const matchLead = (msg as { lead_id?: unknown }).lead_id;
    this.pending.set(
      seq,
      isScore ? update : type === 'match_update' && typeof matchLead === 'string' ? { matchLead } : null,
    );
    const ready: ScoreUpdate[] = [];
    const matchLeads: string[] = [];
    while (this.pending.has(this.lastSeq + 1)) {
      const next = this.pending.get(this.lastSeq + 1);
      this.pending.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      if (next && 'matchLead' in next) {
        if (!matchLeads.includes(next.matchLead)) matchLeads.push(next.matchLead);
      } else if (next) {
        ready.push(next);
      }
    }
    const released = ready.length || matchLeads.length;
    if (this.pending.size > kMaxPending) {
      this.pending.clear();
      return released ? { kind: 'updates', updates: ready, matchLeads } : { kind: 'reconnect' };
    }
    return released ? { kind: 'updates', updates: ready, matchLeads } : { kind: 'none' };
  }

  // A gap that did not close: frames held are dropped (the server replays
  // them after `since`).
  abandonGap(): void {
    this.pending.clear();
  }

  onClose(code: number): CloseDecision {
    this.pending.clear();
    if (code === 4001) {
      this.state = 'signed-out';
      return { kind: 'signout', message: 'Your session has expired or the token is not valid. Sign in again.' };
    }
    if (code === 4003) {
      this.state = 'signed-out';
      return { kind: 'signout', message: 'This token belongs to another brokerage. Sign in with your own token.' };
    }
    this.state = 'reconnecting';
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempts);
    this.attempts += 1;
    const spread = base * this.backoff.jitter;
    const delayMs = Math.round(base - spread + 2 * spread * this.random());
    return { kind: 'reconnect', delayMs };
  }
}

// The parts of a browser WebSocket the client uses (a fake in tests).
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number): void;
}

export interface LiveClientOptions {
  origin: string;
  tenant: string;
  token: string;
  openSocket: (url: string) => SocketLike;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (handle: unknown) => void;
  onUpdates: (updates: ScoreUpdate[]) => void;
  // Leads whose property matches moved (match_update), in stream order.
  onMatches?: (leadIds: string[]) => void;
  onResync: () => void;
  onState: (state: ConnectionState) => void;
  onSignout: (message: string) => void;
  state?: StreamState;
  // How long a gap in seq may stay open before the client reconnects.
  gapTimeoutMs?: number;
}

// One live subscription: reconnects with backoff and `since` until stopped.
export class LiveClient {
  readonly stream: StreamState;
  private socket: SocketLike | null = null;
  private retryTimer: unknown = null;
  private gapTimer: unknown = null;
  private stopped = false;
  // URLs of every connection opened (for diagnostics and tests).
  readonly urls: string[] = [];

  constructor(private readonly o: LiveClientOptions) {
    this.stream = o.state ?? new StreamState();
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) this.o.clearTimer(this.retryTimer);
    if (this.gapTimer !== null) this.o.clearTimer(this.gapTimer);
    this.retryTimer = this.gapTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onopen = s.onerror = null;
      s.close(1000);
    }
  }

  private open(): void {
    this.retryTimer = null;
    const url = this.stream.url(this.o.origin, this.o.tenant, this.o.token);
    this.urls.push(url);
    this.stream.state = this.stream.state === 'reconnecting' ? 'reconnecting' : 'connecting';
    this.o.onState(this.stream.state);
    const s = this.o.openSocket(url);
    this.socket = s;
    const resumes = this.stream.seq > 0;
    const reopened = this.urls.length > 1;
    s.onopen = () => {
      this.stream.onOpen();
      this.o.onState('live');
      // Back without a seq to resume from: what changed meanwhile is only in a fresh snapshot.
      if (reopened && !resumes) this.o.onResync();
    };
    s.onmessage = (ev) => this.message(typeof ev.data === 'string' ? ev.data : '');
    s.onerror = () => {
      /* a close event follows and decides */
    };
    s.onclose = (ev) => this.closed(ev.code);
  }

  private message(text: string): void {
    const effect = this.stream.onMessage(text);
    switch (effect.kind) {
      case 'updates':
        if (effect.updates.length) this.o.onUpdates(effect.updates);
        if (effect.matchLeads.length) this.o.onMatches?.(effect.matchLeads);
        break;
      case 'resync':
        this.o.onResync();
        break;
      case 'reconnect':
        this.reconnectNow();
        return;
      case 'none':
        break;
    }
    this.watchGap();
  }

  private watchGap(): void {
    if (this.stream.pendingCount === 0) {
      if (this.gapTimer !== null) this.o.clearTimer(this.gapTimer);
      this.gapTimer = null;
      return;
    }
    if (this.gapTimer !== null) return;
    this.gapTimer = this.o.setTimer(() => {
      this.gapTimer = null;
      if (this.stream.pendingCount > 0) {
        this.stream.abandonGap();
        this.reconnectNow();
      }
    }, this.o.gapTimeoutMs ?? 2000);
  }

  // Drops the socket and opens a new one resuming after the last seq applied.
  private reconnectNow(): void {
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onopen = s.onerror = null;
      s.close(1000);
    }
    this.stream.abandonGap();
    this.stream.state = 'reconnecting';
    if (!this.stopped) this.open();
  }

  private closed(code: number): void {
    this.socket = null;
    if (this.gapTimer !== null) this.o.clearTimer(this.gapTimer);
    this.gapTimer = null;
    const decision = this.stream.onClose(code);
    this.o.onState(this.stream.state);
    if (this.stopped) return;
    if (decision.kind === 'signout') {
      this.stopped = true;
      this.o.onSignout(decision.message);
      return;
    }
    this.retryTimer = this.o.setTimer(() => this.open(), decision.delayMs);
  }
}
