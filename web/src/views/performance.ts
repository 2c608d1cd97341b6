// Performance: live latency percentiles, throughput, connections, cache, model.
import type uPlot from 'uplot';
import type { ApiClient } from '../api';
import { axisStyle, palette, responsiveChart, timeAxis } from '../charts';
import { card, h, tile } from '../dom';
import * as fmt from '../format';
import type { CacheLookups, Performance } from '../types';

const kPoints = 300; // 5 minutes at one sample a second

export class PerformanceView {
  readonly el: HTMLElement;
  private latencyChart: uPlot | null = null;
  private rateChart: uPlot | null = null;
  private readonly t: number[] = [];
  private readonly p50: number[] = [];
  private readonly p95: number[] = [];
  private readonly p99: number[] = [];
  private readonly eps: number[] = [];
  private readonly latencyBox = h('div', { class: 'chart', id: 'latency-chart' });
  private readonly rateBox = h('div', { class: 'chart', id: 'rate-chart' });
  private readonly values = {
    p99: h('div', { class: 'tile-value', id: 'perf-p99' }, '–'),
    eps: h('div', { class: 'tile-value', id: 'perf-eps' }, '–'),
    ws: h('div', { class: 'tile-value', id: 'perf-ws' }, '–'),
    cache: h('div', { class: 'tile-value', id: 'perf-cache' }, '–'),
    model: h('div', { class: 'tile-value small-value', id: 'perf-model' }, '–'),
    fallback: h('div', { class: 'tile-value', id: 'perf-fallback' }, '–'),
  };
  private readonly hints = {
    p99: h('span', null, ''),
    eps: h('span', null, ''),
    ws: h('span', null, ''),
    cache: h('span', null, ''),
    fallback: h('span', null, ''),
  };
  private readonly pageStats = h('dl', { class: 'attrs stats', id: 'page-stats' });
  // What the page itself sees of the stream, set by the shell.
  clientStats: () => [string, string][] = () => [];
  latest: Performance | null = null;
  error = '';

  constructor(private readonly api: ApiClient) {
    const legend = h(
      'div',
      { class: 'legend' },
      h('span', null, h('i', { class: 'swatch p50' }), 'p50'),
      h('span', null, h('i', { class: 'swatch p95' }), 'p95'),
      h('span', null, h('i', { class: 'swatch p99' }), 'p99'),
    );
    this.el = h(
      'div',
      { class: 'view', id: 'view-performance' },
      h(
        'div',
        { class: 'tiles six' },
        tile('Scoring p99', this.values.p99, this.hints.p99),
        tile('Events per second', this.values.eps, this.hints.eps),
        tile('Live connections', this.values.ws, this.hints.ws),
        tile('Cache hit rate', this.values.cache, this.hints.cache),
        tile('Model', this.values.model),
        tile('Fallback scores', this.values.fallback, this.hints.fallback),
      ),
      h('div', { class: 'two-col wide-left' }, card('Scoring latency', legend, this.latencyBox), card('Events per second', this.rateBox)),
      card('This page', this.pageStats),
    );
  }

  // One sample from /api/realtime/performance; always recorded, drawn when visible.
  async poll(visible: boolean): Promise<void> {
    let p: Performance;
    try {
      p = await this.api.get<Performance>('/api/realtime/performance');
      this.error = '';
    } catch (e) {
      this.error = String((e as Error).message);
      return;
    }
    this.latest = p;
    this.t.push(Date.now() / 1000);
    this.p50.push(p.scoring_latency.p50_ms);
    this.p95.push(p.scoring_latency.p95_ms);
    this.p99.push(p.scoring_latency.p99_ms);
    this.eps.push(p.events_per_second.last_10s);
    if (this.t.length > kPoints) for (const a of [this.t, this.p50, this.p95, this.p99, this.eps]) a.shift();
    if (visible) this.draw();
  }

  draw(): void {
    const p = this.latest;
    if (!p) return;
    this.values.p99.textContent = fmt.millis(p.scoring_latency.p99_ms);
    this.hints.p99.textContent = `p50 ${fmt.millis(p.scoring_latency.p50_ms)} · p95 ${fmt.millis(p.scoring_latency.p95_ms)} · ${fmt.int(p.scoring_latency.samples)} samples`;
    this.values.eps.textContent = fmt.rate(p.events_per_second.last_10s);
    this.hints.eps.textContent = `${fmt.rate(p.events_per_second.last_60s)} over the last minute`;
    this.values.ws.textContent = fmt.int(p.websocket_connections.tenant);
    this.hints.ws.textContent = `${fmt.int(p.websocket_connections.total)} on this server`;
    // The tenant's own hit rate (an older server reports only its own).
    const own = p.cache.tenant ?? p.cache;
    const rate = (l: CacheLookups) => (l.hits + l.misses ? fmt.percent(l.hit_rate, 1) : '–');
    this.values.cache.textContent = rate(own);
    this.hints.cache.textContent =
      `snapshots ${rate(own.feature_snapshots)} · warm scores ${rate(own.warm_scores)} · ` +
      `${fmt.int(own.hits)} hits, ${fmt.int(own.misses)} misses` +
      (p.cache.tenant ? ` · ${rate(p.cache)} on this server` : '');
    this.values.model.textContent = p.model_version;
    this.values.model.title = p.model_version;
    this.values.fallback.textContent = fmt.int(p.fallback_scores.tenant);
    this.hints.fallback.textContent = `${fmt.int(p.fallback_scores.total)} on this server`;
    this.pageStats.replaceChildren(...this.clientStats().flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
    const latencyData: uPlot.AlignedData = [this.t, this.p50, this.p95, this.p99];
    const rateData: uPlot.AlignedData = [this.t, this.eps];
    if (!this.latencyChart) {
      const ms = (_u: uPlot, v: number[]) => v.map((x) => (x == null ? '' : x === 0 ? '0' : fmt.millis(x)));
      this.latencyChart = responsiveChart(
        this.latencyBox,
        {
          height: 260,
          legend: { show: false },
          scales: { y: { range: (_u, _min, max) => [0, Math.max(0.01, max * 1.15)] } },
          axes: [timeAxis, { ...axisStyle, size: 64, values: ms }],
          series: [
            {},
            { label: 'p50', stroke: palette.p50, width: 2, points: { show: false } },
            { label: 'p95', stroke: palette.p95, width: 2, points: { show: false } },
            { label: 'p99', stroke: palette.p99, width: 2, points: { show: false } },
          ],
        },
        latencyData,
      );
      this.rateChart = responsiveChart(
        this.rateBox,
        {
          height: 260,
          legend: { show: false },
          scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
          axes: [timeAxis, { ...axisStyle, size: 48 }],
          series: [{}, { label: 'events/s', stroke: palette.accent, width: 2, fill: 'rgba(124,108,255,0.15)', points: { show: false } }],
        },
        rateData,
      );
    } else {
      this.latencyChart.setData(latencyData);
      this.rateChart?.setData(rateData);
    }
  }
}
