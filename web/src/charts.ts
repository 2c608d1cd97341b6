// uPlot charts that follow their container's width.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function responsiveChart(
  container: HTMLElement,
  opts: Omit<uPlot.Options, 'width'>,
  data: uPlot.AlignedData,
): uPlot {
  const width = Math.max(280, container.clientWidth || 600);
  const chart = new uPlot({ ...opts, width } as uPlot.Options, data, container);
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w > 0 && Math.abs(w - chart.width) > 2) chart.setSize({ width: w, height: opts.height });
  });
  ro.observe(container);
  return chart;
}

export const axisStyle = {
  stroke: '#8a94a6',
  grid: { stroke: 'rgba(138,148,166,0.15)', width: 1 },
  ticks: { stroke: 'rgba(138,148,166,0.25)', width: 1 },
  font: '11px Inter, system-ui, sans-serif',
};

export const palette = {
  hot: '#f0506e',
  warm: '#f5a524',
  cold: '#4c8dff',
  p50: '#35c48b',
  p95: '#f5a524',
  p99: '#f0506e',
  accent: '#7c6cff',
};

// Time ticks people read: clock time within a day, dates beyond.
export const timeAxis: uPlot.Axis = {
  ...axisStyle,
  space: 90,
  values: (u, splits) => {
    const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
    return splits.map((s) => {
      const d = new Date(s * 1000);
      if (span > 2 * 86400) return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
      if (span > 3600) return d.toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit' });
      return d.toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit', second: '2-digit' });
    });
  },
};
