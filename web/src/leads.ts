// The tenant's leads as the page knows them: a snapshot from /api/leads plus
// every live update, ranked on demand. Pure: no DOM.
import type { Band, Score, ScoreUpdate } from './types';

export interface LeadEntry {
  score: Score;
  // When the page last saw this lead change (ms since epoch), from scored_at.
  activityMs: number;
  // The score before the last change (undefined when first seen).
  previous?: number;
}

export interface StreamItem {
  seq: number;
  leadId: string;
  from: number | null;
  to: number;
  band: Band;
  fromBand: Band | null;
  reason: string;
  latencyUs: number;
  atMs: number;
  turnedHot: boolean;
}

export interface ApplyResult {
  item: StreamItem;
  turnedHot: boolean;
}

function timeOf(s: Score): number {
  const t = Date.parse(s.scored_at);
  return Number.isNaN(t) ? 0 : t;
}

export class LeadBook {
  private readonly leads = new Map<string, LeadEntry>();
  private rankedCache: LeadEntry[] | null = null;
  private readonly bands: Record<Band, number> = { hot: 0, warm: 0, cold: 0 };
  // Newest first; bounded.
  readonly stream: StreamItem[] = [];
  private readonly streamLimit: number;
  version = 0;

  constructor(streamLimit = 200) {
    this.streamLimit = streamLimit;
  }

  get size(): number {
    return this.leads.size;
  }

  get(leadId: string): LeadEntry | undefined {
    return this.leads.get(leadId);
  }

  // Merges a snapshot: a lead already updated live with a newer score keeps it.
  applySnapshot(scores: Score[]): void {
    for (const s of scores) {
      const have = this.leads.get(s.lead_id);
      if (have && timeOf(have.score) > timeOf(s)) continue;
      if (have) this.bands[have.score.band] -= 1;
      this.bands[s.band] += 1;
      this.leads.set(s.lead_id, { score: s, activityMs: timeOf(s), previous: have?.score.score });
    }
    this.touch();
  }

  // Forgets every lead (a resync replaces them with a fresh snapshot).
  clear(): void {
    this.leads.clear();
    this.bands.hot = this.bands.warm = this.bands.cold = 0;
    this.touch();
  }

  apply(u: ScoreUpdate, nowMs: number): ApplyResult {
    const have = this.leads.get(u.lead_id);
    const fromBand = have ? have.score.band : null;
    const turnedHot = u.band === 'hot' && fromBand !== 'hot';
    if (have) this.bands[have.score.band] -= 1;
    this.bands[u.band] += 1;
    const score: Score = { ...u };
    delete (score as Partial<ScoreUpdate>).type;
    delete (score as Partial<ScoreUpdate>).seq;
    this.leads.set(u.lead_id, { score, activityMs: timeOf(u) || nowMs, previous: have?.score.score });
    const item: StreamItem = {
      seq: u.seq,
      leadId: u.lead_id,
      from: have ? have.score.score : null,
      to: u.score,
      band: u.band,
      fromBand,
      reason: u.reasons?.[0]?.text ?? '',
      latencyUs: u.latency_us,
      atMs: nowMs,
      turnedHot,
    };
    this.stream.unshift(item);
    if (this.stream.length > this.streamLimit) this.stream.length = this.streamLimit;
    this.touch();
    return { item, turnedHot };
  }

  // Every lead best first (score, then probability, then most recent).
  ranked(): LeadEntry[] {
    if (!this.rankedCache) {
      this.rankedCache = [...this.leads.values()].sort(
        (a, b) =>
          b.score.score - a.score.score ||
          b.score.probability - a.score.probability ||
          b.activityMs - a.activityMs,
      );
    }
    return this.rankedCache;
  }

  // The first `limit` leads of a band, best first, and how many it holds.
  top(band: Band | null, limit: number): { rows: LeadEntry[]; total: number } {
    const all = this.ranked();
    if (!band) return { rows: all.slice(0, limit), total: all.length };
    const rows: LeadEntry[] = [];
    let total = 0;
    for (const e of all) {
      if (e.score.band !== band) continue;
      if (rows.length < limit) rows.push(e);
      total += 1;
    }
    return { rows, total };
  }

  countByBand(): Record<Band, number> {
    return { ...this.bands };
  }

  private touch(): void {
    this.rankedCache = null;
    this.version += 1;
  }
}
