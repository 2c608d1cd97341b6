// The pricing outlook: a stored listing priced by POST /api/predictions/pricing
// (the AVM's value and 80%/90% ranges moved by a market's forecast), shown as
// a recommended list price with its 80% range and a small chart from the
// value to the price at the end of the forecast's selling period.
import type uPlot from 'uplot';
import { ApiError, NotAvailable, type ApiClient } from '../api';
import { axisStyle, palette, responsiveChart } from '../charts';
import { h, notAvailable } from '../dom';
import * as fmt from '../format';
import { obj, pricingOutlook } from './pricing_outlook';

type Json = Record<string, unknown>;

export class PricingPanel {
  readonly el: HTMLElement;
  private readonly listing = h('input', { id: 'pricing-listing', type: 'text', placeholder: 'Listing id, e.g. ames-0012', 'aria-label': 'Listing id', autocomplete: 'off' });
  private readonly region = h('select', { id: 'pricing-region', 'aria-label': 'Market' }, h('option', { value: '' }, 'No market'));
  private readonly result = h('div', { id: 'pricing-result' }, h('p', { class: 'muted' }, 'Price a stored listing: its value, a recommended list price and the market forecast\'s move, each with its 80% range.'));
  private chart: uPlot | null = null;

  constructor(private readonly api: ApiClient) {
    const form = h(
      'form',
      { class: 'pricing-form', id: 'pricing-form' },
      this.listing,
      this.region,
      h('button', { type: 'submit' }, 'Price'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.price();
    });
    this.el = h('div', { id: 'predictions-pricing' }, form, this.result);
  }

  // The market forecast's regions, for the market choice (kept when it stays).
  setRegions(regions: string[]): void {
    const chosen = this.region.value;
    this.region.replaceChildren(h('option', { value: '' }, 'No market'), ...regions.map((r) => h('option', { value: r }, r)));
    this.region.value = regions.includes(chosen) ? chosen : regions[0] ?? '';
  }

  private async price(): Promise<void> {
    const id = this.listing.value.trim();
    if (!id) return;
    this.result.replaceChildren(h('p', { class: 'muted' }, 'Pricing…'));
    try {
      const stored = await this.api.get<Json>(`/api/listings/${encodeURIComponent(id)}`);
      const body: Json = { ...(obj(stored.attributes) ?? {}) };
      if (this.region.value) body.region = this.region.value;
      this.show(await this.api.post<Json>('/api/predictions/pricing', body));
    } catch (e) {
      this.chart?.destroy();
      this.chart = null;
      if (e instanceof NotAvailable) this.result.replaceChildren(notAvailable('Not available', 'This server does not price listings yet.'));
      else if (e instanceof ApiError && e.status === 404) this.result.replaceChildren(notAvailable('Nothing yet', e.message));
      else this.result.replaceChildren(h('p', { class: 'muted' }, `The server answered: ${(e as Error).message}`));
    }
  }

  private show(v: Json): void {
    const o = pricingOutlook(v);
    this.chart?.destroy();
    this.chart = null;
    const chartBox = h('div', { class: 'chart chart-compact', id: 'pricing-chart' });
    this.result.replaceChildren(
      h('p', { class: 'pricing-headline' }, h('strong', null, o.headline)),
      h('p', { class: 'muted small' }, o.value),
      o.market ? h('p', { class: 'small pricing-market' }, o.market) : h('p', { class: 'muted small' }, 'No market chosen: the price stands on the valuation alone.'),
      ...(o.chart ? [chartBox] : []),
      h('p', { class: 'muted small pricing-explanation' }, typeof v.explanation === 'string' ? v.explanation : ''),
      h('p', { class: 'model-line muted', 'data-model-version': String(v.model_version ?? '') }, `Model ${String(v.model_version ?? '–')} · ranges are 80% intervals`),
    );
    if (!o.chart) return;
    const c = o.chart;
    this.chart = responsiveChart(
      chartBox,
      {
        height: 160,
        legend: { show: false },
        // Two points, the forecast's first and later month: padded so neither
        // sits on the edge, and ticked there only.
        scales: { x: { time: true, range: () => [c.x[0] - (c.x[1] - c.x[0]) * 0.08, c.x[1] + (c.x[1] - c.x[0]) * 0.08] }, y: { auto: true } },
        axes: [
          {
            ...axisStyle,
            splits: () => c.x,
            values: (_u, splits) => splits.map((s) => new Date(s * 1000).toLocaleDateString('en-US', { month: 'short', year: 'numeric', timeZone: 'UTC' })),
          },
          { ...axisStyle, size: 70, values: (_u, splits) => splits.map((s) => fmt.usd(s)) },
        ],
        series: [
          {},
          { label: 'Price', stroke: palette.accent, width: 2, points: { show: true, size: 6 } },
          { label: '80% low', stroke: 'rgba(124,108,255,0.45)', width: 1, dash: [4, 4] },
          { label: '80% high', stroke: 'rgba(124,108,255,0.45)', width: 1, dash: [4, 4] },
        ],
        bands: [{ series: [3, 2], fill: 'rgba(124,108,255,0.14)' }],
      },
      [c.x, c.price, c.lower, c.upper],
    );
  }
}
