// Live scoring: hot-lead board and the stream of score changes.
import { bandPill, card, h, tile } from '../dom';
import * as fmt from '../format';
import type { LeadBook, LeadEntry, StreamItem } from '../leads';
import type { Band } from '../types';

const kBoardRows = 100;
const kStreamRows = 60;
const kMinRedrawMs = 200;

export class LiveView {
  readonly el: HTMLElement;
  private readonly boardBody: HTMLTableSectionElement;
  private readonly boardFoot: HTMLElement;
  private readonly streamList: HTMLOListElement;
  private readonly kpiHot = h('div', { class: 'tile-value', id: 'kpi-hot' }, '–');
  private readonly kpiLeads = h('div', { class: 'tile-value', id: 'kpi-leads' }, '–');
  private readonly kpiRate = h('div', { class: 'tile-value', id: 'kpi-rate' }, '–');
  private readonly kpiLatency = h('div', { class: 'tile-value', id: 'kpi-latency' }, '–');
  private filter: Band | null = 'hot';
  private renderedVersion = -1;
  private renderedAt = 0;
  private renderedStreamSeq = -1;
  private readonly freshSeqs = new Set<number>();

  constructor(private readonly book: LeadBook) {
    this.boardBody = h('tbody', { id: 'board-body' });
    this.boardFoot = h('div', { class: 'table-foot', id: 'board-foot' });
    this.streamList = h('ol', { class: 'stream', id: 'stream', 'aria-live': 'off' });
    const filters = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Band filter' });
    for (const [label, band] of [
      ['Hot', 'hot'],
      ['Warm', 'warm'],
      ['All', null],
    ] as const) {
      const b = h('button', { type: 'button', 'aria-pressed': String(band === this.filter) }, label);
      b.addEventListener('click', () => {
        this.filter = band;
        for (const other of filters.querySelectorAll('button')) other.setAttribute('aria-pressed', 'false');
        b.setAttribute('aria-pressed', 'true');
        this.renderedVersion = -1;
        this.render(Date.now(), true);
      });
      filters.append(b);
    }
    const board = card(
      'Hot-lead board',
      h('div', { class: 'card-tools' }, filters),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'board', id: 'board' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { class: 'num col-rank' }, '#'),
              h('th', null, 'Lead'),
              h('th', { class: 'num' }, 'Score'),
              h('th', { class: 'col-band' }, 'Band'),
              h('th', { class: 'hide-sm' }, 'Why'),
              h('th', { class: 'num' }, 'Last active'),
            ),
          ),
          this.boardBody,
        ),
      ),
      this.boardFoot,
    );
    board.classList.add('board-card');
    const stream = card('Score stream', this.streamList);
    stream.classList.add('stream-card');
    this.el = h(
      'div',
      { class: 'view', id: 'view-live' },
      h(
        'div',
        { class: 'tiles' },
        tile('Hot leads', this.kpiHot, 'score 50 and up'),
        tile('Leads loaded', this.kpiLeads, 'best 1,000 and every live change'),
        tile('Score changes', this.kpiRate, 'last minute'),
        tile('Scoring latency', this.kpiLatency, 'median of the last 100'),
      ),
      h('div', { class: 'live-grid' }, board, stream),
    );
  }

  markFresh(items: StreamItem[]): void {
    for (const i of items) this.freshSeqs.add(i.seq);
  }

  // Redraws what changed since the last call, at most every kMinRedrawMs:
  // a person cannot follow 50 changes a second and the frames stay free.
  render(nowMs: number, force = false): void {
    if (!force && nowMs - this.renderedAt < kMinRedrawMs) return;
    this.renderedAt = nowMs;
    if (this.renderedVersion === this.book.version) {
      this.refreshAges(nowMs);
      return;
    }
    this.renderedVersion = this.book.version;
    const counts = this.book.countByBand();
    this.kpiHot.textContent = fmt.int(counts.hot);
    this.kpiLeads.textContent = fmt.int(this.book.size);
    let perMinute = 0;
    const lat: number[] = [];
    for (const s of this.book.stream) {
      if (nowMs - s.atMs <= 60000) perMinute += 1;
      if (lat.length < 100) lat.push(s.latencyUs);
    }
    this.kpiRate.textContent = `${fmt.int(perMinute)}/min`;
    lat.sort((a, b) => a - b);
    this.kpiLatency.textContent = lat.length ? fmt.micros(lat[Math.floor(lat.length / 2)]) : '–';
    this.renderBoard(nowMs);
    this.renderStream();
  }

  // Rows are kept and rewritten in place: with thousands of leads and dozens
  // of updates a second, rebuilding the table each time costs frames.
  private readonly rowPool: BoardRow[] = [];
  private emptyRow: HTMLTableRowElement | null = null;

  private renderBoard(nowMs: number): void {
    const { rows, total } = this.book.top(this.filter, kBoardRows);
    while (this.rowPool.length < rows.length) {
      const row = new BoardRow(this.rowPool.length + 1);
      this.rowPool.push(row);
      this.boardBody.append(row.tr);
    }
    this.rowPool.forEach((row, i) => row.show(i < rows.length ? rows[i] : null, nowMs));
    if (!rows.length) {
      this.emptyRow ??= h('tr', null, h('td', { colspan: 6, class: 'empty-row' }));
      this.emptyRow.firstElementChild!.textContent =
        this.filter === 'hot' ? 'No hot leads right now. They appear here the moment one turns hot.' : 'No leads yet.';
      if (!this.emptyRow.isConnected) this.boardBody.append(this.emptyRow);
    } else {
      this.emptyRow?.remove();
    }
    this.boardFoot.textContent =
      total > rows.length ? `Top ${fmt.int(rows.length)} of ${fmt.int(total)} leads` : `${fmt.int(total)} leads`;
  }

  // New changes are prepended and the oldest dropped; nothing else is rebuilt.
  private renderStream(): void {
    const all = this.book.stream;
    const head = all.length ? all[0].seq : -1;
    if (head === this.renderedStreamSeq) return;
    const known = all.findIndex((s) => s.seq === this.renderedStreamSeq);
    const fresh = (known < 0 ? all : all.slice(0, known)).slice(0, kStreamRows);
    if (known < 0) this.streamList.replaceChildren();
    this.renderedStreamSeq = head;
    this.streamList.querySelector('.empty-row')?.remove();
    // A flash draws the eye to a change; in a burst it would only repaint all the time.
    if (fresh.length > 3) this.freshSeqs.clear();
    this.streamList.prepend(...fresh.map((s) => this.streamItem(s)));
    while (this.streamList.children.length > kStreamRows) this.streamList.lastElementChild!.remove();
    this.freshSeqs.clear();
    if (!this.streamList.children.length) this.streamList.append(h('li', { class: 'empty-row' }, 'Waiting for the first score change…'));
  }

  private streamItem(s: StreamItem): HTMLElement {
    return h(
      'li',
      { class: `stream-item${s.turnedHot ? ' turned-hot' : ''}${this.freshSeqs.has(s.seq) ? ' fresh' : ''}`, 'data-seq': s.seq },
      h('span', { class: 'stream-time muted' }, fmt.clock(s.atMs)),
      h('a', { class: 'lead-link', href: `#/lead/${encodeURIComponent(s.leadId)}` }, s.leadId),
      h(
        'span',
        { class: 'stream-change' },
        h('span', { class: 'muted' }, s.from === null ? 'new' : String(s.from)),
        h('span', { class: 'arrow', 'aria-label': 'to' }, '→'),
        h('strong', { class: s.from !== null && s.to < s.from ? 'down' : 'up' }, s.to),
      ),
      bandPill(s.band),
      h('span', { class: 'stream-reason' }, s.reason || '–'),
      h('span', { class: 'stream-latency muted' }, fmt.micros(s.latencyUs)),
    );
  }

  private refreshAges(nowMs: number): void {
    for (const td of this.boardBody.querySelectorAll<HTMLElement>('td.age')) {
      if (td.dataset.ms) setText(td, fmt.ago(Number(td.dataset.ms), nowMs));
    }
  }
}

// One row of the board; setText only touches the DOM when a value changed.
class BoardRow {
  readonly tr: HTMLTableRowElement;
  private readonly link: HTMLAnchorElement;
  private readonly meter: HTMLElement;
  private readonly fill: HTMLElement;
  private readonly scoreEl: HTMLElement;
  private readonly deltaEl: HTMLElement;
  private readonly pill: HTMLElement;
  private readonly reason: HTMLElement;
  private readonly age: HTMLElement;
  private lead = '';

  constructor(rank: number) {
    this.link = h('a', { class: 'lead-link' });
    this.fill = h('span', { class: 'meter-fill' });
    this.meter = h('span', { class: 'meter' }, this.fill);
    this.scoreEl = h('strong', { class: 'score-num' });
    this.deltaEl = h('span', { class: 'delta' });
    this.pill = h('span', { class: 'pill' });
    this.reason = h('td', { class: 'reason hide-sm' });
    this.age = h('td', { class: 'num muted age' });
    this.tr = h(
      'tr',
      null,
      h('td', { class: 'num muted col-rank' }, rank),
      h('td', { class: 'lead-cell' }, this.link),
      h('td', { class: 'num' }, h('span', { class: 'score-cell' }, this.meter, this.scoreEl, this.deltaEl)),
      h('td', { class: 'col-band' }, this.pill),
      this.reason,
      this.age,
    );
  }

  show(e: LeadEntry | null, nowMs: number): void {
    this.tr.hidden = !e;
    if (!e) return;
    const s = e.score;
    if (this.lead !== s.lead_id) {
      this.lead = s.lead_id;
      this.tr.dataset.lead = s.lead_id;
      this.link.href = `#/lead/${encodeURIComponent(s.lead_id)}`;
      this.link.textContent = s.lead_id;
    }
    setText(this.scoreEl, String(s.score));
    const scoreClass = `score-num band-text-${s.band}`;
    if (this.scoreEl.className !== scoreClass) this.scoreEl.className = scoreClass;
    this.fill.style.width = `${s.score}%`;
    const meterClass = `meter band-${s.band}`;
    if (this.meter.className !== meterClass) this.meter.className = meterClass;
    const pillClass = `pill band-${s.band}`;
    if (this.pill.className !== pillClass) {
      this.pill.className = pillClass;
      this.pill.textContent = s.band;
    }
    const delta = e.previous === undefined ? 0 : s.score - e.previous;
    setText(this.deltaEl, delta > 0 ? `+${delta}` : delta < 0 ? String(delta) : '');
    const deltaClass = delta > 0 ? 'delta up' : delta < 0 ? 'delta down' : 'delta';
    if (this.deltaEl.className !== deltaClass) this.deltaEl.className = deltaClass;
    setText(this.reason, s.reasons?.[0]?.text ?? '–');
    this.age.dataset.ms = String(e.activityMs);
    setText(this.age, fmt.ago(e.activityMs, nowMs));
  }
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}
