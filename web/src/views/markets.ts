// Markets, deals and agents from the prediction routes: every number shown
// with its 80% range and the version of the model that made it. Until a model
// is trained the panel says so plainly; it never shows made-up numbers.
import { ApiError, NotAvailable, type ApiClient } from '../api';
import { card, h, notAvailable } from '../dom';
import * as fmt from '../format';
import { PricingPanel } from './pricing';

type Json = Record<string, unknown>;

interface Panel {
  id: string;
  title: string;
  path: string;
  waiting: string;
  render: (v: Json) => HTMLElement;
}

const kRows = 15;

const kPanels: Panel[] = [
  {
    id: 'deals',
    title: 'Open deals',
    path: '/api/predictions/deal-closure',
    waiting: 'Close probability and expected close date per open deal appear here once a deal model is trained (reai train deals).',
    render: renderDeals,
  },
  {
    id: 'agents',
    title: 'Agent performance',
    path: '/api/predictions/agent-performance',
    waiting: 'Expected closings per agent with coaching findings appear here once the pipeline holds a few months of history.',
    render: renderAgents,
  },
  {
    id: 'markets',
    title: '90-day market forecast',
    path: '/api/predictions/market-trends?horizon=90',
    waiting: 'Market forecasts with interval bands per city appear here once a forecast is made (reai forecast --out MODEL_DIR/markets/forecast.csv).',
    render: renderMarkets,
  },
];

const str = (x: unknown): string => (typeof x === 'string' ? x : x === null || x === undefined ? '–' : String(x));
const num = (x: unknown): number => (typeof x === 'number' ? x : Number.NaN);
const rows = (x: unknown): Json[] => (Array.isArray(x) ? x.filter((r): r is Json => !!r && typeof r === 'object') : []);

function shortDate(iso: unknown): string {
  const d = new Date(str(iso));
  if (Number.isNaN(d.getTime())) return str(iso);
  return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', year: 'numeric', timeZone: 'UTC' });
}

// How old a forecast's data is, from a market forecast answer (or a pricing
// answer's `market`): "data through 2013-12, 155 months old". A forecast of
// an old panel is that market's, not today's, so it is said next to it.
// Null when the answer does not say where its data ends.
export function dataAge(v: Json): string | null {
  const through = typeof v.data_through === 'string' ? v.data_through : typeof v.origin === 'string' ? v.origin : '';
  if (!through) return null;
  const months = num(v.data_age_months);
  if (!Number.isFinite(months)) return `data through ${through}`;
  const age = months <= 0 ? 'current' : months === 1 ? '1 month old' : `${fmt.int(months)} months old`;
  return `data through ${through}, ${age}`;
}

// "Model deals-2025-12-31-1c23 · trained Nov 27, 2026 · as of Nov 27, 2026 · 80% ranges"
function modelLine(v: Json): HTMLElement {
  const parts = [`Model ${str(v.model_version)}`];
  if (v.model_created_at) parts.push(`trained ${shortDate(v.model_created_at)}`);
  if (v.as_of) parts.push(`as of ${shortDate(v.as_of)}`);
  parts.push('ranges are 80% intervals');
  return h('p', { class: 'model-line muted', 'data-model-version': str(v.model_version) }, parts.join(' · '));
}

// The forecast's data age, apart from the model line so it is not missed.
function dataAgeLine(v: Json): HTMLElement | null {
  const text = dataAge(v);
  if (!text) return null;
  const old = num(v.data_age_months) >= 12;
  return h('p', { class: old ? 'data-age data-age-old' : 'data-age muted', 'data-age-months': str(v.data_age_months) },
    old ? `Forecast from ${text}: that market, not today's.` : `Forecast from ${text}.`);
}

function table(head: string[], numeric: boolean[], body: (string | HTMLElement)[][], total: number): HTMLElement {
  const th = head.map((t, i) => h('th', numeric[i] ? { class: 'num' } : null, t));
  const tr = body.map((r) => h('tr', null, ...r.map((c, i) => h('td', numeric[i] ? { class: 'num' } : null, c))));
  return h(
    'div',
    null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'board' }, h('thead', null, h('tr', null, ...th)), h('tbody', null, ...tr))),
    total > body.length ? h('div', { class: 'table-foot' }, `${body.length} of ${fmt.int(total)} shown`) : null,
  );
}

function empty(text: string): HTMLElement {
  return h('p', { class: 'muted' }, text);
}

// A degenerate deal model's answers are its stage prior: said above the table.
function fallbackLine(v: Json): HTMLElement | null {
  if (v.method !== 'stage_prior') return null;
  return h('p', { class: 'fallback-reason data-age-old' }, `Stage averages, not a model: ${str(v.fallback_reason)}.`);
}

function renderDeals(v: Json): HTMLElement {
  const list = rows(v.opportunities);
  if (!list.length) return h('div', null, modelLine(v), fallbackLine(v), empty('No open deals in the pipeline.'));
  const body = list.slice(0, kRows).map((d) => {
    const window = Array.isArray(d.close_window80) ? d.close_window80.map(shortDate).join(' – ') : '–';
    return [
      str(d.opportunity_id),
      str(d.agent_id),
      fmt.humanize(str(d.stage)),
      fmt.usd(num(d.value)),
      h('strong', { class: 'p-close' }, fmt.percent(num(d.p_close))),
      shortDate(d.expected_close_date),
      window,
    ];
  });
  return h(
    'div',
    null,
    modelLine(v),
    fallbackLine(v),
    table(['Deal', 'Agent', 'Stage', 'Value', 'P(close)', 'Expected close', '80% window'], [false, false, false, true, true, false, false], body, list.length),
  );
}

// Agents with leads but no pipeline yet have findings and no forecast numbers.
function fixed(x: unknown, digits: number): string {
  const n = num(x);
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

function range(lo: unknown, hi: unknown, digits = 1): string {
  return Number.isFinite(num(lo)) ? `${fixed(lo, digits)} – ${fixed(hi, digits)}` : '–';
}

function renderAgents(v: Json): HTMLElement {
  const list = rows(v.agents);
  if (!list.length) return h('div', null, modelLine(v), empty('No agents with pipeline history yet.'));
  const body = list.slice(0, kRows).map((a) => [
    str(a.agent_id),
    str(a.next_month),
    h('strong', null, fixed(a.expected_closings, 2)),
    range(a.lower80, a.upper80, 0),
    fixed(a.expected_closings_horizon, 2),
    h('span', { class: 'coaching' }, str(a.coaching)),
  ]);
  return h(
    'div',
    null,
    modelLine(v),
    table(['Agent', 'Month', 'Closings', '80% range', 'Next 3 months', 'Coaching'], [false, false, true, true, true, false], body, list.length),
  );
}

function renderMarkets(v: Json): HTMLElement {
  const list = rows(v.regions ?? v.forecasts);
  if (!list.length) return h('div', null, modelLine(v), dataAgeLine(v), empty('No regions in the forecast.'));
  const price = str(v.metric) === 'median';
  const value = (x: unknown) => (price ? fmt.usd(num(x)) : fmt.int(num(x)));
  const body = list.slice(0, kRows).map((r) => [
    str(r.region),
    str(r.month),
    h('strong', null, value(r.point)),
    `${value(r.lower80)} – ${value(r.upper80)}`,
  ]);
  const metric = price ? 'Median price' : fmt.humanize(str(v.metric));
  return h(
    'div',
    null,
    modelLine(v),
    dataAgeLine(v),
    table(['Region', 'Month', metric, '80% range'], [false, false, true, true], body, list.length),
  );
}

function isNotTrained(e: unknown): boolean {
  if (e instanceof NotAvailable) return true;
  return e instanceof ApiError && e.status === 404 && /not trained/i.test(e.message);
}

export class MarketsView {
  readonly el: HTMLElement;
  private readonly bodies: HTMLElement[] = [];
  private readonly pricing: PricingPanel;

  constructor(private readonly api: ApiClient) {
    const cards = kPanels.map((p, i) => {
      const body = h('div', { 'data-panel': String(i), id: `predictions-${p.id}` }, h('p', { class: 'muted' }, 'Checking…'));
      this.bodies.push(body);
      return card(p.title, body);
    });
    this.pricing = new PricingPanel(api);
    this.el = h('div', { class: 'view', id: 'view-markets' }, ...cards, card('Pricing outlook', this.pricing.el));
  }

  async refresh(): Promise<void> {
    await Promise.all(
      kPanels.map(async (p, i) => {
        const body = this.bodies[i];
        try {
          const v = await this.api.get<Json>(p.path);
          body.replaceChildren(p.render(v));
          if (p.id === 'markets') this.pricing.setRegions(rows(v.regions).map((r) => str(r.region)));
        } catch (e) {
          if (isNotTrained(e)) body.replaceChildren(notAvailable('Not trained yet', p.waiting));
          // 404: nothing of that kind yet; 422: what the answer needs first (a pipeline).
          else if (e instanceof ApiError && (e.status === 404 || e.status === 422)) body.replaceChildren(notAvailable('Nothing yet', e.message));
          else body.replaceChildren(h('p', { class: 'muted' }, `The server answered: ${(e as Error).message}`));
        }
      }),
    );
  }
}
