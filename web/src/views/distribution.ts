// Distribution of current scores: by band, by source, in ten score bins.
import { NotAvailable, type ApiClient } from '../api';
import { card, h, notAvailable, tile } from '../dom';
import * as fmt from '../format';

type BandCounts = { hot: number; warm: number; cold: number };
interface Distribution {
  leads: number;
  bands: BandCounts;
  sources: (BandCounts & { source: string; count: number })[];
  score_bins: (BandCounts & { from: number; to: number })[];
}

const kBands = ['cold', 'warm', 'hot'] as const;

export class DistributionView {
  readonly el: HTMLElement;
  private readonly content = h('div', { class: 'view-stack' });

  constructor(private readonly api: ApiClient) {
    this.el = h('div', { class: 'view', id: 'view-distribution' }, this.content);
  }

  async refresh(): Promise<void> {
    let d: Distribution;
    try {
      d = await this.api.get<Distribution>('/api/leads/distribution');
    } catch (e) {
      this.content.replaceChildren(
        e instanceof NotAvailable ? notAvailable('Not available', 'This server does not serve score distributions.') : h('p', { class: 'muted' }, String((e as Error).message)),
      );
      return;
    }
    const total = Math.max(1, d.leads);
    const tiles = h(
      'div',
      { class: 'tiles' },
      tile('Leads scored', h('div', { class: 'tile-value' }, fmt.int(d.leads))),
      ...(['hot', 'warm', 'cold'] as const).map((b) =>
        tile(`${b[0].toUpperCase()}${b.slice(1)}`, h('div', { class: `tile-value band-text-${b}` }, fmt.int(d.bands[b])), `${fmt.percent(d.bands[b] / total, 1)} of leads`),
      ),
    );
    const maxBin = Math.max(1, ...d.score_bins.map((b) => b.hot + b.warm + b.cold));
    const histogram = h(
      'div',
      { class: 'histogram', id: 'histogram', role: 'img', 'aria-label': 'Leads per score bin, stacked by band' },
      ...d.score_bins.map((b) => {
        const n = b.hot + b.warm + b.cold;
        const col = h('div', { class: 'hist-stack', title: `${b.from}–${b.to}: ${fmt.int(n)} leads` });
        for (const band of kBands) {
          if (!b[band]) continue;
          const seg = h('div', { class: `hist-seg band-bg-${band}` });
          seg.style.height = `${(b[band] / maxBin) * 100}%`;
          col.append(seg);
        }
        return h('div', { class: 'hist-col' }, h('div', { class: 'hist-count' }, n ? fmt.int(n) : ''), h('div', { class: 'hist-bar' }, col), h('div', { class: 'hist-label' }, `${b.from}–${b.to}`));
      }),
    );
    const maxSource = Math.max(1, ...d.sources.map((s) => s.count));
    const sources = [...d.sources].sort((a, b) => b.count - a.count);
    const bySource = h(
      'div',
      { class: 'hbars', id: 'by-source' },
      ...sources.map((s) => {
        const bar = h('div', { class: 'hbar' });
        bar.style.width = `${(s.count / maxSource) * 100}%`;
        for (const band of [...kBands].reverse()) {
          if (!s[band]) continue;
          const seg = h('div', { class: `hbar-seg band-bg-${band}`, title: `${band}: ${fmt.int(s[band])}` });
          seg.style.width = `${(s[band] / s.count) * 100}%`;
          bar.append(seg);
        }
        return h(
          'div',
          { class: 'hbar-row' },
          h('div', { class: 'hbar-label' }, s.source),
          h('div', { class: 'hbar-track' }, bar),
          h('div', { class: 'hbar-value' }, fmt.int(s.count), h('span', { class: 'muted small' }, ` · ${fmt.percent(s.hot / Math.max(1, s.count))} hot`)),
        );
      }),
    );
    const legend = h('div', { class: 'legend' }, ...(['hot', 'warm', 'cold'] as const).map((b) => h('span', null, h('i', { class: `swatch band-bg-${b}` }), b)));
    this.content.replaceChildren(
      tiles,
      h(
        'div',
        { class: 'two-col' },
        card('Leads by score', legend.cloneNode(true) as HTMLElement, histogram),
        card('Leads by source', legend, bySource),
      ),
      card('Conversion by score decile', notAvailable('Not available yet', 'Conversion needs closed outcomes for scored leads; it appears once outcomes are recorded.')),
    );
  }
}
