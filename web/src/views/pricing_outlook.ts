// The numbers of a POST /api/predictions/pricing answer as a broker reads
// them, and the points of its chart; no DOM, so unit tests read them.
import * as fmt from '../format';

type Json = Record<string, unknown>;

const num = (x: unknown): number => (typeof x === 'number' ? x : Number.NaN);
export const obj = (x: unknown): Json | null => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : null);

// "+1.2%", "-0.5%".
export function signedPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return '–';
  const text = fmt.percent(Math.abs(fraction), 1);
  return `${fraction < 0 ? '−' : '+'}${text}`;
}

// Unix seconds of the first day of a "2014-01" month (UTC), NaN otherwise.
export function monthStart(month: unknown): number {
  const m = typeof month === 'string' ? /^(\d{4})-(\d{2})$/.exec(month) : null;
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, 1) / 1000 : Number.NaN;
}

export interface PricingOutlook {
  headline: string; // "List at $215,000 (80%: $198,000 – $233,000)"
  value: string; // the AVM's value and ranges
  market: string | null; // the market move, its months and how old its data is
  // Value at the forecast's first month to list price at its later one, each
  // with its 80% range; null without a market (nothing to draw over time).
  chart: { x: number[]; price: number[]; lower: number[]; upper: number[] } | null;
}

// The lines and chart points of a pricing answer; only the answer's numbers.
export function pricingOutlook(v: Json): PricingOutlook {
  const avm = obj(v.avm) ?? {};
  const headline = `List at ${fmt.usd(num(v.list_price))} (80%: ${fmt.usd(num(v.lower80))} – ${fmt.usd(num(v.upper80))})`;
  const value =
    `Value ${fmt.usd(num(avm.predicted))} · 80% ${fmt.usd(num(avm.lower80))} – ${fmt.usd(num(avm.upper80))}` +
    ` · 90% ${fmt.usd(num(avm.lower90))} – ${fmt.usd(num(avm.upper90))}`;
  const m = obj(v.market);
  if (!m) return { headline, value, market: null, chart: null };
  const age = Number.isFinite(num(m.data_age_months)) ? `, ${fmt.int(num(m.data_age_months))} months old` : '';
  const market =
    `${String(m.region)} ${String(m.metric)} ${signedPercent(num(m.change))} from ${String(m.from_month)} to ${String(m.to_month)}` +
    ` (80%: ${signedPercent(num(m.lower80))} to ${signedPercent(num(m.upper80))}); forecast from data through ${String(m.data_through)}${age}`;
  const from = monthStart(m.from_month);
  const to = monthStart(m.to_month);
  const chart =
    Number.isFinite(from) && Number.isFinite(to) && to > from
      ? {
          x: [from, to],
          price: [num(avm.predicted), num(v.list_price)],
          lower: [num(avm.lower80), num(v.lower80)],
          upper: [num(avm.upper80), num(v.upper80)],
        }
      : null;
  return { headline, value, market, chart };
}
