// Numbers and times for people.

const intFmt = new Intl.NumberFormat('en-US');
const usdFmt = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 0 });

export function int(n: number): string {
  return Number.isFinite(n) ? intFmt.format(Math.round(n)) : '–';
}

export function usd(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : usdFmt.format(n);
}

export function percent(fraction: number, digits = 0): string {
  if (!Number.isFinite(fraction)) return '–';
  return `${(fraction * 100).toFixed(digits)}%`;
}

// 1-3 significant digits, e.g. 0.012 ms, 1.4 ms, 12 ms, 250 ms, 1.2 s.
export function millis(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  if (ms >= 0.001) return `${(ms * 1000).toFixed(ms >= 0.1 ? 0 : 1)} µs`;
  return ms === 0 ? '0 ms' : `${(ms * 1e6).toFixed(0)} ns`;
}

export function micros(us: number): string {
  return millis(us / 1000);
}

export function rate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '–';
  if (perSecond >= 100) return `${int(perSecond)}/s`;
  return `${perSecond.toFixed(1)}/s`;
}

// "just now", "42 s ago", "3 min ago", "5 h ago", "2 days ago".
export function ago(thenMs: number, nowMs: number): string {
  if (!Number.isFinite(thenMs)) return '–';
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  const d = Math.floor(h / 24);
  return `${d} days ago`;
}

export function dateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-US', { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString('en-US', { hour: 'numeric', minute: '2-digit', second: '2-digit' });
}

// "property_view" -> "Property view"
export function humanize(name: string): string {
  const s = name.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}
