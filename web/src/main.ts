// The dashboard: sign-in, the live stream, and the views.
import './style.css';
import { makeApi } from './api';
import { adoptFragmentToken, forgetToken, isExpired, parseToken, storedToken, storeToken, type Session } from './auth';
import { h } from './dom';
import * as fmt from './format';
import { LeadBook } from './leads';
import { LiveClient, type ConnectionState } from './stream';
import type { Score } from './types';
import { DetailView } from './views/detail';
import { DistributionView } from './views/distribution';
import { HealthView } from './views/health';
import { LiveView } from './views/live';
import { MarketsView } from './views/markets';
import { PerformanceView } from './views/performance';

const root = document.getElementById('app')!;

function logo(): HTMLElement {
  return h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'r'), h('span', { class: 'brand-name' }, 'reai'));
}

function showSignIn(message = ''): void {
  document.title = 'Sign in · reai';
  const input = h('textarea', {
    id: 'token-input',
    rows: 4,
    placeholder: 'eyJhbGciOiJIUzI1NiIs…',
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-describedby': 'signin-help',
  });
  const error = h('div', { class: 'signin-error', id: 'signin-error', role: 'alert' }, message);
  if (!message) error.hidden = true;
  const form = h(
    'form',
    { class: 'signin-card', id: 'signin' },
    logo(),
    h('h1', null, 'Sign in to your lead dashboard'),
    h('p', { class: 'muted', id: 'signin-help' }, 'Paste the access token your administrator gave you. It stays in this browser tab only.'),
    error,
    h('label', { for: 'token-input', class: 'field-label' }, 'Access token'),
    input,
    h('button', { type: 'submit', class: 'btn primary', id: 'signin-button' }, 'Sign in'),
    h('p', { class: 'muted small' }, 'Running the demo? ', h('code', null, 'make run'), ' prints a link that signs you in directly.'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const s = parseToken(input.value);
    if (!s) {
      error.textContent = 'That does not look like a reai access token.';
      error.hidden = false;
      return;
    }
    if (isExpired(s, Date.now())) {
      error.textContent = 'This token has expired. Ask for a fresh one.';
      error.hidden = false;
      return;
    }
    storeToken(sessionStorage, s.token);
    location.hash = '#/live';
    startApp(s);
  });
  root.replaceChildren(h('main', { class: 'signin' }, form));
  input.focus();
}

type ViewName = 'live' | 'lead' | 'distribution' | 'performance' | 'health' | 'markets';
const kTabs: [ViewName, string][] = [
  ['live', 'Live scoring'],
  ['lead', 'Lead detail'],
  ['distribution', 'Distribution'],
  ['performance', 'Performance'],
  ['health', 'Health'],
  ['markets', 'Markets & deals'],
];

let stopApp: (() => void) | null = null;

function startApp(session: Session): void {
  stopApp?.();
  let signedOut = false;
  const timers: number[] = [];
  const signOut = (message: string) => {
    if (signedOut) return;
    signedOut = true;
    stop();
    forgetToken(sessionStorage);
    history.replaceState(null, '', location.pathname + location.search);
    showSignIn(message);
  };
  const api = makeApi(() => session.token, signOut);
  const book = new LeadBook();
  const openLead = (id: string) => {
    location.hash = `#/lead/${encodeURIComponent(id)}`;
  };
  const live = new LiveView(book);
  const detail = new DetailView(api, openLead);
  const distribution = new DistributionView(api);
  const perfView = new PerformanceView(api);
  const health = new HealthView();
  const markets = new MarketsView(api);
  const views: Record<ViewName, HTMLElement> = {
    live: live.el,
    lead: detail.el,
    distribution: distribution.el,
    performance: perfView.el,
    health: health.el,
    markets: markets.el,
  };

  const conn = h('span', { class: 'conn conn-connecting', id: 'conn', role: 'status' }, h('span', { class: 'conn-dot', 'aria-hidden': 'true' }), h('span', { class: 'conn-text' }, 'Connecting'));
  const connText = conn.querySelector('.conn-text')!;
  const nav = h('nav', { class: 'tabs', 'aria-label': 'Views' });
  const tabLinks = new Map<ViewName, HTMLAnchorElement>();
  kTabs.forEach(([name, label], i) => {
    const a = h('a', { href: `#/${name}`, class: 'tab', 'data-view': name, title: `${label} (${i + 1})` }, label);
    tabLinks.set(name, a);
    nav.append(a);
  });
  const toasts = h('div', { class: 'toasts', id: 'toasts', 'aria-live': 'polite' });
  const signOutBtn = h('button', { type: 'button', class: 'btn ghost', id: 'signout' }, 'Sign out');
  signOutBtn.addEventListener('click', () => signOut('You signed out.'));
  const main = h('main', { class: 'content', id: 'content' });
  root.replaceChildren(
    h(
      'header',
      { class: 'topbar' },
      logo(),
      h('div', { class: 'tenant' }, h('span', { class: 'muted small' }, 'Brokerage'), h('strong', { id: 'tenant' }, session.tenant)),
      h('div', { class: 'topbar-right' }, conn, signOutBtn),
    ),
    nav,
    main,
    toasts,
  );

  let current: ViewName = 'live';
  let hotAlerts = 0;
  const setTitle = () => {
    document.title = `${hotAlerts ? `(${hotAlerts}) ` : ''}${kTabs.find(([n]) => n === current)![1]} · reai`;
  };
  const route = () => {
    const m = /^#\/([a-z]+)(?:\/(.*))?$/.exec(location.hash);
    const name = (m && m[1] in views ? m[1] : 'live') as ViewName;
    current = name;
    for (const [n, a] of tabLinks) {
      if (n === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    main.replaceChildren(views[name]);
    if (name === 'live') {
      hotAlerts = 0;
      live.render(Date.now(), true);
    }
    setTitle();
    if (name === 'lead' && m?.[2]) {
      const id = decodeURIComponent(m[2]);
      if (id !== detail.current || !detail.el.querySelector('.lead-header')) void detail.show(id);
    } else if (name === 'lead') {
      detail.showPicker(book.top(null, 12).rows.map((e) => ({ id: e.score.lead_id, score: e.score.score, band: e.score.band })));
    }
    if (name === 'distribution') void distribution.refresh();
    if (name === 'performance') perfView.draw();
    if (name === 'health') void health.refresh();
    if (name === 'markets') void markets.refresh();
  };
  window.addEventListener('hashchange', route);

  const onKey = (ev: KeyboardEvent) => {
    const t = ev.target as HTMLElement;
    if (t.closest('input, textarea, select') || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'Escape') {
      toasts.replaceChildren();
      return;
    }
    const n = Number(ev.key);
    if (n >= 1 && n <= kTabs.length) {
      location.hash = `#/${kTabs[n - 1][0]}`;
    } else if (ev.key === '/') {
      ev.preventDefault();
      location.hash = '#/lead';
      setTimeout(() => document.getElementById('lead-search')?.focus(), 0);
    }
  };
  document.addEventListener('keydown', onKey);

  const toast = (s: Score) => {
    const link = h('a', { href: `#/lead/${encodeURIComponent(s.lead_id)}`, class: 'toast', role: 'status' }, h('span', { class: 'toast-flame', 'aria-hidden': 'true' }), h('span', null, h('strong', null, s.lead_id), ` turned hot · ${s.score}`, h('span', { class: 'toast-reason' }, s.reasons?.[0]?.text ?? '')));
    toasts.prepend(link);
    while (toasts.children.length > 4) toasts.lastElementChild?.remove();
    window.setTimeout(() => link.classList.add('leaving'), 5000);
    window.setTimeout(() => link.remove(), 5600);
  };

  const loadSnapshot = async (replace: boolean) => {
    try {
      const r = await api.get<{ leads: Score[] }>('/api/leads?limit=1000');
      if (replace) book.clear();
      book.applySnapshot(r.leads);
    } catch (e) {
      if (!signedOut) connText.textContent = `Could not load leads: ${(e as Error).message}`;
    }
  };

  const setConn = (state: ConnectionState) => {
    conn.className = `conn conn-${state}`;
    connText.textContent = state === 'live' ? 'Live' : state === 'reconnecting' ? 'Reconnecting…' : state === 'connecting' ? 'Connecting…' : 'Signed out';
    health.connection = state;
  };

  const client = new LiveClient({
    origin: location.origin,
    tenant: session.tenant,
    token: session.token,
    openSocket: (url) => new WebSocket(url) as unknown as import('./stream').SocketLike,
    setTimer: (fn, ms) => window.setTimeout(fn, ms),
    clearTimer: (t) => window.clearTimeout(t as number),
    onUpdates: (updates) => {
      received += updates.length;
      const now = Date.now();
      const items = [];
      for (const u of updates) {
        const r = book.apply(u, now);
        items.push(r.item);
        if (r.turnedHot) {
          toast(u);
          if (current !== 'live') hotAlerts += 1;
        }
        detail.onUpdate(u);
      }
      live.markFresh(items);
      if (hotAlerts) setTitle();
    },
    onMatches: (leadIds) => leadIds.forEach((id) => detail.onMatchUpdate(id)),
    onResync: () => void loadSnapshot(true),
    onState: setConn,
    onSignout: signOut,
  });

  let received = 0;
  const openedAt = Date.now();
  perfView.clientStats = () => [
    ['Connection', conn.textContent ?? ''],
    ['Last update number (seq)', client.stream.seq ? fmt.int(client.stream.seq) : '–'],
    ['Updates received', fmt.int(received)],
    ['Connections opened', fmt.int(client.urls.length)],
    ['Leads loaded', fmt.int(book.size)],
    ['Open since', fmt.ago(openedAt, Date.now())],
  ];

  // Draw at most once per animation frame, only what is on screen.
  let frame = 0;
  const draw = () => {
    frame = requestAnimationFrame(draw);
    if (current === 'live') live.render(Date.now());
  };
  frame = requestAnimationFrame(draw);
  timers.push(window.setInterval(() => void perfView.poll(current === 'performance'), 1000));
  timers.push(window.setInterval(() => current === 'distribution' && void distribution.refresh(), 5000));
  timers.push(window.setInterval(() => current === 'health' && void health.refresh(), 3000));
  timers.push(
    window.setInterval(() => {
      if (isExpired(session, Date.now())) signOut('Your session has expired. Sign in again with a fresh token.');
    }, 10000),
  );

  function stop() {
    client.stop();
    cancelAnimationFrame(frame);
    for (const t of timers) window.clearInterval(t);
    window.removeEventListener('hashchange', route);
    document.removeEventListener('keydown', onKey);
    stopApp = null;
  }
  stopApp = stop;

  route();
  client.start();
  void loadSnapshot(false);
  void perfView.poll(false);
}

function boot(): void {
  adoptFragmentToken(location, history, sessionStorage);
  const token = storedToken(sessionStorage);
  const session = token ? parseToken(token) : null;
  if (!session) {
    if (token) forgetToken(sessionStorage);
    showSignIn(token ? 'The saved token could not be read. Sign in again.' : '');
    return;
  }
  if (isExpired(session, Date.now())) {
    forgetToken(sessionStorage);
    showSignIn('Your session has expired. Sign in again with a fresh token.');
    return;
  }
  startApp(session);
}

boot();
