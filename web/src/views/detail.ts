// Lead detail: score over time, reasons, attributes, events and matches.
import uPlot from 'uplot';
import { ApiError, NotAvailable, type ApiClient } from '../api';
import { axisStyle, palette, responsiveChart, timeAxis } from '../charts';
import { bandPill, card, h, notAvailable } from '../dom';
import * as fmt from '../format';
import { matchBudgetLine } from './match_budget';
import type { Reason, Score } from '../types';

interface History {
  scores: { scored_at: string; score: number; band: string; model: string; reasons: Reason[] }[];
}
interface ContactEvent {
  event_id: string;
  type: string;
  ts: string;
  property_id?: string;
  value?: number;
}
interface EventsAnswer {
  total: number;
  events: ContactEvent[];
}

export class DetailView {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly search: HTMLInputElement;
  private leadId = '';
  private chart: uPlot | null = null;
  private points: [number[], number[]] = [[], []];
  private reasonsEl: HTMLElement | null = null;
  private headerEl: HTMLElement | null = null;
  private loadToken = 0;
  private eventsBox: HTMLElement | null = null;
  private eventsTimer: ReturnType<typeof setTimeout> | null = null;
  private matchesBox: HTMLElement | null = null;
  private matchesTimer: ReturnType<typeof setTimeout> | null = null;
  private matchesRequest = 0;  // the newest matches refresh sent

  constructor(
    private readonly api: ApiClient,
    private readonly openLead: (id: string) => void,
  ) {
    this.search = h('input', {
      type: 'search',
      id: 'lead-search',
      placeholder: 'Lead id, e.g. lead-42',
      'aria-label': 'Lead id',
      autocomplete: 'off',
    });
    const form = h('form', { class: 'lead-search', role: 'search' }, this.search, h('button', { type: 'submit', class: 'btn' }, 'Open'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = this.search.value.trim();
      if (id) this.openLead(id);
    });
    this.body = h('div', { class: 'detail-body' });
    this.el = h('div', { class: 'view', id: 'view-lead' }, form, this.body);
  }

  // With no lead chosen: a prompt and the hottest leads to pick from.
  showPicker(hottest: { id: string; score: number; band: string }[]): void {
    if (this.leadId) return;
    this.body.replaceChildren(
      card(
        'Hot right now',
        hottest.length
          ? h('ul', { class: 'picker' }, ...hottest.map((l) => h('li', null, h('a', { class: 'lead-link', href: `#/lead/${encodeURIComponent(l.id)}` }, l.id), h('span', { class: `pill band-${l.band}` }, String(l.score)))))
          : h('p', { class: 'muted' }, 'No leads yet.'),
        h('p', { class: 'muted small' }, 'Pick a lead, or type its id above (press / from anywhere).'),
      ),
    );
  }

  get current(): string {
    return this.leadId;
  }

  async show(leadId: string): Promise<void> {
    this.leadId = leadId;
    this.search.value = leadId;
    const token = ++this.loadToken;
    if (this.matchesTimer !== null) clearTimeout(this.matchesTimer);
    this.matchesTimer = null;
    this.chart?.destroy();
    this.chart = null;
    this.body.replaceChildren(h('p', { class: 'muted' }, `Loading ${leadId}…`));
    const id = encodeURIComponent(leadId);
    const [score, history, contact, events, matches] = await Promise.allSettled([
      this.api.get<Score>(`/api/contacts/${id}/score`),
      this.api.get<History>(`/api/contacts/${id}/scores?limit=1000`),
      this.api.get<Record<string, unknown>>(`/api/contacts/${id}`),
      this.api.get<EventsAnswer>(`/api/contacts/${id}/events?limit=100`),
      this.api.get<unknown>(`/api/leads/${id}/matches?k=5`),
    ]);
    if (token !== this.loadToken) return;
    if (score.status === 'rejected') {
      const e = score.reason;
      this.body.replaceChildren(
        h('div', { class: 'empty' }, h('div', { class: 'empty-title' }, e instanceof ApiError && e.status === 404 ? `No lead called “${leadId}”` : 'Could not load this lead'), h('p', null, String(e?.message ?? e))),
      );
      return;
    }
    const s = score.value;
    this.retryMatchesIfLoading(leadId, token, matches);
    this.headerEl = this.header(s);
    this.reasonsEl = h('div', null);
    this.fillReasons(s.reasons);
    const chartBox = h('div', { class: 'chart', id: 'lead-chart' });
    const rows = history.status === 'fulfilled' ? [...history.value.scores].reverse() : [];
    this.body.replaceChildren(
      this.headerEl,
      h(
        'div',
        { class: 'detail-grid' },
        card('Score over time', chartBox, rows.length < 2 ? h('p', { class: 'muted small' }, 'No score changes recorded yet: the line grows with every change.') : null),
        card('Why this score', this.reasonsEl),
        card('Contact', this.attributes(contact)),
        card('Events', (this.eventsBox = h('div', null, this.timeline(events)))),
        card('Property matches', (this.matchesBox = h('div', null, this.matches(matches)))),
      ),
    );
    this.points = [rows.map((r) => Date.parse(r.scored_at) / 1000), rows.map((r) => r.score)];
    if (!this.points[0].length) this.points = [[Date.parse(s.scored_at) / 1000], [s.score]];
    this.chart = responsiveChart(
      chartBox,
      {
        height: 240,
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        scales: {
          x: { time: true, range: (_u, min, max) => [min - Math.max(2, (max - min) * 0.03), max + Math.max(2, (max - min) * 0.03)] },
          y: { range: [0, 100] },
        },
        axes: [timeAxis, { ...axisStyle, values: (_u, v) => v.map((x) => String(x)) }],
        series: [
          {},
          {
            label: 'Score',
            stroke: palette.accent,
            width: 2,
            fill: 'rgba(124,108,255,0.12)',
            points: { show: true, size: 5, filter: (u) => Array.from({ length: Math.min(this.points[0].length, u.data[0].length) }, (_, i) => i) },
            paths: uPlot.paths.stepped!({ align: 1 }),
          },
        ],
      },
      this.withNow(),
    );
  }

  // A live update for the lead on screen.
  onUpdate(s: Score): void {
    if (s.lead_id !== this.leadId || !this.chart || !this.headerEl) return;
    this.points[0].push(Date.parse(s.scored_at) / 1000);
    this.points[1].push(s.score);
    this.chart.setData(this.withNow());
    const fresh = this.header(s);
    this.headerEl.replaceWith(fresh);
    this.headerEl = fresh;
    this.fillReasons(s.reasons);
    this.refreshEventsSoon(s.lead_id);
  }

  // The lead on screen's matches moved (a match_update: a view, save or
  // tour, or a restated budget): re-read them, at most once every 300 ms, and
  // the timeline (the event may not have moved the score). A refresh that
  // fails keeps the matches on screen rather than an error.
  // Only the newest request's answer is shown, and a lead opened meanwhile
  // drops the pending refresh (show() clears it).
  onMatchUpdate(leadId: string): void {
    if (leadId !== this.leadId || !this.matchesBox) return;
    this.refreshEventsSoon(leadId);
    if (this.matchesTimer !== null) return;
    const token = this.loadToken;
    this.matchesTimer = setTimeout(async () => {
      this.matchesTimer = null;
      const request = ++this.matchesRequest;
      const [m] = await Promise.allSettled([this.api.get<unknown>(`/api/leads/${encodeURIComponent(leadId)}/matches?k=5`)]);
      if (token !== this.loadToken || request !== this.matchesRequest || !this.matchesBox) return;
      if (m.status === 'fulfilled') this.matchesBox.replaceChildren(this.matches(m));
    }, 300);
  }

  // A score change means a new event: re-read the timeline, at most once a second.
  private refreshEventsSoon(leadId: string): void {
    if (this.eventsTimer !== null) return;
    this.eventsTimer = setTimeout(async () => {
      this.eventsTimer = null;
      const [r] = await Promise.allSettled([this.api.get<EventsAnswer>(`/api/contacts/${encodeURIComponent(leadId)}/events?limit=100`)]);
      if (leadId === this.leadId && this.eventsBox) this.eventsBox.replaceChildren(this.timeline(r));
    }, 1000);
  }

  // Listings still loading on the server (503 with Retry-After, e.g. right
  // after an import and reload): ask again when it says, for as long as this
  // lead stays open, so the panel fills in without a page reload.
  private retryMatchesIfLoading(leadId: string, token: number, r: PromiseSettledResult<unknown>): void {
    if (r.status !== 'rejected' || !(r.reason instanceof ApiError) || r.reason.status !== 503) return;
    const delayMs = Math.min(Math.max(r.reason.retryAfterS ?? 1, 0.5), 10) * 1000;
    setTimeout(async () => {
      if (token !== this.loadToken) return;
      const [again] = await Promise.allSettled([this.api.get<unknown>(`/api/leads/${encodeURIComponent(leadId)}/matches?k=5`)]);
      if (token !== this.loadToken || !this.matchesBox) return;
      this.matchesBox.replaceChildren(this.matches(again));
      this.retryMatchesIfLoading(leadId, token, again);
    }, delayMs);
  }

  // The score holds until the next change: the line runs on to now.
  private withNow(): uPlot.AlignedData {
    const [t, v] = this.points;
    const now = Date.now() / 1000;
    if (!t.length || now <= t[t.length - 1]) return [t, v];
    return [[...t, now], [...v, v[v.length - 1]]];
  }

  private header(s: Score): HTMLElement {
    return h(
      'div',
      { class: 'lead-header' },
      h('div', null, h('div', { class: 'lead-title' }, s.lead_id), h('div', { class: 'muted' }, `Scored ${fmt.dateTime(s.scored_at)} · ${fmt.int(s.events_count)} events · model ${s.model}${s.fallback_reason ? ` (${s.fallback_reason})` : ''}`)),
      h(
        'div',
        { class: 'lead-score' },
        h('div', { class: `big-score band-${s.band}`, id: 'lead-score' }, s.score),
        h('div', null, bandPill(s.band), h('div', { class: 'muted small' }, `${fmt.percent(s.probability, 1)} to sign in 90 days`), h('div', { class: 'muted small' }, `confidence ${fmt.percent(s.confidence)}`)),
      ),
    );
  }

  private fillReasons(reasons: Reason[]): void {
    if (!this.reasonsEl) return;
    const max = Math.max(0.01, ...reasons.map((r) => Math.abs(r.impact)));
    const items = reasons.map((r) => {
      const bar = h('span', { class: `impact-bar ${r.impact >= 0 ? 'up' : 'down'}` });
      bar.style.width = `${(Math.abs(r.impact) / max) * 100}%`;
      return h(
        'li',
        null,
        h('div', { class: 'reason-text' }, r.text),
        h('div', { class: 'impact' }, h('span', { class: 'impact-track' }, bar), h('span', { class: `impact-value ${r.impact >= 0 ? 'up' : 'down'}` }, `${r.impact >= 0 ? 'raises' : 'lowers'} ${Math.abs(r.impact).toFixed(2)}`)),
      );
    });
    this.reasonsEl.replaceChildren(items.length ? h('ul', { class: 'reasons' }, ...items) : h('p', { class: 'muted' }, 'No reasons: the score is at the base rate.'));
  }

  private attributes(r: PromiseSettledResult<Record<string, unknown>>): HTMLElement {
    if (r.status === 'rejected') {
      return r.reason instanceof NotAvailable ? notAvailable('Not available', 'This server does not expose contact attributes.') : h('p', { class: 'muted' }, 'No stored attributes for this lead.');
    }
    const c = r.value;
    const yesNo = (v: unknown) => (v === true ? 'Yes' : v === false ? 'No' : '–');
    const rows: [string, string][] = [
      ['Source', String(c.source || '–')],
      ['Lead type', String(c.lead_type || '–')],
      ['Agent', String(c.assigned_agent_id || '–')],
      ['Budget', fmt.usd(c.budget as number | null)],
      ['Timeline', typeof c.timeline_months === 'number' ? `${c.timeline_months} month${c.timeline_months === 1 ? '' : 's'}` : '–'],
      ['Pre-approved', yesNo(c.pre_approved)],
      ['Beds wanted', typeof c.beds_wanted === 'number' ? String(c.beds_wanted) : '–'],
      ['Area', String(c.area_wanted || '–')],
      ['Phone / email', `${yesNo(c.has_phone)} / ${yesNo(c.has_email)}`],
      ['Created', typeof c.created_at === 'string' ? fmt.dateTime(c.created_at) : '–'],
    ];
    return h('dl', { class: 'attrs' }, ...rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }

  private timeline(r: PromiseSettledResult<EventsAnswer>): HTMLElement {
    if (r.status === 'rejected') {
      return r.reason instanceof NotAvailable ? notAvailable('Not available', 'This server has no events route.') : h('p', { class: 'muted' }, 'No events.');
    }
    const { events, total } = r.value;
    if (!events.length) return h('p', { class: 'muted' }, 'No events yet.');
    return h(
      'div',
      null,
      h(
        'ol',
        { class: 'timeline', id: 'lead-events' },
        ...events.map((e) =>
          h(
            'li',
            { class: `ev ev-${e.type}` },
            h('span', { class: 'ev-dot', 'aria-hidden': 'true' }),
            h('span', { class: 'ev-type' }, fmt.humanize(e.type)),
            e.property_id ? h('span', { class: 'muted' }, ` ${e.property_id}${e.value ? ` · ${fmt.usd(e.value)}` : ''}`) : null,
            h('time', { class: 'muted', datetime: e.ts }, fmt.dateTime(e.ts)),
          ),
        ),
      ),
      total > events.length ? h('div', { class: 'table-foot' }, `Newest ${fmt.int(events.length)} of ${fmt.int(total)}`) : null,
    );
  }

  private matches(r: PromiseSettledResult<unknown>): HTMLElement {
    if (r.status === 'rejected') {
      if (r.reason instanceof NotAvailable) {
        return notAvailable('Not trained yet', 'Property matching is not served by this server yet. Matches with their reasons appear here once it is.');
      }
      if (r.reason instanceof ApiError && r.reason.status === 404 && /no listings/.test(r.reason.message)) {
        return notAvailable('No listings yet', 'This brokerage has no listings imported. Load them with `reai import listings` and ranked matches with their reasons appear here.');
      }
      if (r.reason instanceof ApiError && r.reason.status === 503) {
        return h('p', { class: 'muted' }, `Listings are loading (${r.reason.message}); matches appear here in a moment.`);
      }
      return h('p', { class: 'muted' }, `No matches: ${String((r.reason as Error)?.message ?? r.reason)}`);
    }
    const v = r.value as { matches?: Record<string, unknown>[]; budget?: unknown };
    const list = Array.isArray(v?.matches) ? v.matches : [];
    const budget = matchBudgetLine(v?.budget);
    const budgetLine = budget ? h('p', { class: 'muted small match-budget' }, budget) : null;
    if (!list.length) return h('div', null, budgetLine, h('p', { class: 'muted' }, 'No matching listings.'));
    const ranked = h(
      'ul',
      { class: 'matches' },
      ...list.map((m) =>
        h(
          'li',
          null,
          h('strong', null, String(m.listing_id ?? m.property_id ?? 'listing')),
          typeof m.list_price === 'number' ? h('span', null, ` · ${fmt.usd(m.list_price as number)}`) : null,
          typeof m.match_score === 'number' ? h('span', { class: 'muted' }, ` · match ${fmt.percent(m.match_score as number)}`) : null,
          typeof m.predicted_interest === 'number'
            ? h('span', { class: 'muted' }, ` · ${fmt.percent(m.predicted_interest as number)} likely to save or tour`)
            : null,
          Array.isArray(m.reasons) ? h('div', { class: 'muted small' }, (m.reasons as unknown[]).map((x) => (typeof x === 'string' ? x : String((x as { text?: unknown })?.text ?? ''))).join(' · ')) : null,
        ),
      ),
    );
    return budgetLine ? h('div', null, budgetLine, ranked) : ranked;
  }
}
