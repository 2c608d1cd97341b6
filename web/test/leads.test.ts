import { describe, expect, it } from 'vitest';
import { LeadBook } from '../src/leads';
import type { Score, ScoreUpdate } from '../src/types';

function score(lead: string, s: number, at = '2026-11-26T15:00:00Z'): Score {
  return {
    tenant_id: 't',
    lead_id: lead,
    probability: s / 100,
    score: s,
    band: s >= 50 ? 'hot' : s >= 20 ? 'warm' : 'cold',
    confidence: 0.5,
    events_count: 1,
    reasons: [{ feature: 'f', text: `reason ${lead}`, impact: 0.4 }],
    model: 'm',
    scored_at: at,
    latency_us: 12,
  };
}
const upd = (seq: number, lead: string, s: number, at?: string): ScoreUpdate => ({ ...score(lead, s, at), type: 'score_update', seq });

describe('LeadBook', () => {
  it('ranks by score and filters by band', () => {
    const b = new LeadBook();
    b.applySnapshot([score('a', 30), score('b', 80), score('c', 55), score('d', 5)]);
    expect(b.ranked().map((e) => e.score.lead_id)).toEqual(['b', 'c', 'a', 'd']);
    const hot = b.top('hot', 1);
    expect(hot.rows.map((e) => e.score.lead_id)).toEqual(['b']);
    expect(hot.total).toBe(2);
    expect(b.countByBand()).toEqual({ hot: 2, warm: 1, cold: 1 });
  });

  it('records old -> new and flags a lead turning hot once', () => {
    const b = new LeadBook();
    b.applySnapshot([score('a', 30)]);
    const r1 = b.apply(upd(1, 'a', 60, '2026-11-26T15:01:00Z'), 1000);
    expect(r1.turnedHot).toBe(true);
    expect(r1.item.from).toBe(30);
    expect(r1.item.to).toBe(60);
    expect(r1.item.reason).toBe('reason a');
    const r2 = b.apply(upd(2, 'a', 70, '2026-11-26T15:02:00Z'), 2000);
    expect(r2.turnedHot).toBe(false);
    const r3 = b.apply(upd(3, 'new', 10), 3000);
    expect(r3.item.from).toBeNull();
    expect(b.stream.map((s) => s.seq)).toEqual([3, 2, 1]);
    expect(b.get('a')?.score.score).toBe(70);
    expect(b.get('a')?.previous).toBe(60);
  });

  it('a stale snapshot does not overwrite a newer live score', () => {
    const b = new LeadBook();
    b.apply(upd(1, 'a', 90, '2026-11-26T16:00:00Z'), 0);
    b.applySnapshot([score('a', 10, '2026-11-26T15:00:00Z')]);
    expect(b.get('a')?.score.score).toBe(90);
  });

  it('keeps the stream bounded and handles thousands of leads', () => {
    const b = new LeadBook(50);
    for (let i = 0; i < 5000; ++i) b.apply(upd(i + 1, `l${i}`, i % 100), i);
    expect(b.size).toBe(5000);
    expect(b.stream.length).toBe(50);
    expect(b.top('hot', 100).total).toBe(2500);
    expect(b.ranked()[0].score.score).toBe(99);
  });
});
