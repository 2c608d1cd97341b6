// Markets, deals and agents: served by the analytics models when they exist.
// Until a route answers, the panel says so plainly; it never shows made-up numbers.
import { ApiError, NotAvailable, type ApiClient } from '../api';
import { card, h, notAvailable } from '../dom';
import * as fmt from '../format';

interface Panel {
  title: string;
  path: string;
  waiting: string;
}

const kPanels: Panel[] = [
  {
    title: '90-day market forecast',
    path: '/api/predictions/market-trends?horizon=90',
    waiting: 'Market forecasts with interval bands per city appear here once a forecast model is trained and served.',
  },
  {
    title: 'Open deals',
    path: '/api/predictions/deal-closure',
    waiting: 'Close probability and expected close date per open deal appear here once a deal model is trained and served.',
  },
  {
    title: 'Agent performance',
    path: '/api/predictions/agent-performance',
    waiting: 'Agent performance with coaching findings appears here once the agent model is trained and served.',
  },
];

function renderValue(v: unknown): HTMLElement {
  if (Array.isArray(v)) {
    const rows = v.slice(0, 20).filter((x): x is Record<string, unknown> => !!x && typeof x === 'object');
    if (!rows.length) return h('p', { class: 'muted' }, 'Nothing to show yet.');
    const keys = Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== 'object').slice(0, 6);
    return h(
      'div',
      { class: 'table-wrap' },
      h('table', { class: 'board' }, h('thead', null, h('tr', null, ...keys.map((k) => h('th', null, fmt.humanize(k))))), h('tbody', null, ...rows.map((r) => h('tr', null, ...keys.map((k) => h('td', null, cell(r[k]))))))),
    );
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const list = Object.values(o).find(Array.isArray);
    if (list) return renderValue(list);
    return h('dl', { class: 'attrs' }, ...Object.entries(o).flatMap(([k, x]) => [h('dt', null, fmt.humanize(k)), h('dd', null, cell(x))]));
  }
  return h('p', null, cell(v));
}

function cell(x: unknown): string {
  if (typeof x === 'number') return Number.isInteger(x) ? fmt.int(x) : x.toFixed(3);
  if (x === null || x === undefined) return '–';
  return typeof x === 'object' ? JSON.stringify(x) : String(x);
}

export class MarketsView {
  readonly el: HTMLElement;
  private readonly bodies: HTMLElement[] = [];

  constructor(private readonly api: ApiClient) {
    const cards = kPanels.map((p, i) => {
      const body = h('div', { 'data-panel': String(i) }, h('p', { class: 'muted' }, 'Checking…'));
      this.bodies.push(body);
      return card(p.title, body);
    });
    this.el = h('div', { class: 'view', id: 'view-markets' }, h('div', { class: 'three-col' }, ...cards));
  }

  async refresh(): Promise<void> {
    await Promise.all(
      kPanels.map(async (p, i) => {
        const body = this.bodies[i];
        try {
          const v = await this.api.get<unknown>(p.path);
          body.replaceChildren(renderValue(v));
        } catch (e) {
          if (e instanceof NotAvailable) body.replaceChildren(notAvailable('Not trained yet', p.waiting));
          else if (e instanceof ApiError && e.status === 404) body.replaceChildren(notAvailable('Nothing yet', e.message));
          else body.replaceChildren(h('p', { class: 'muted' }, `The server answered: ${(e as Error).message}`));
        }
      }),
    );
  }
}
