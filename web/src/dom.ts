// A tiny element builder: text goes in as text (never as HTML).

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
      else if (k === 'class') el.className = String(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
}

export function bandPill(band: string): HTMLElement {
  return h('span', { class: `pill band-${band}` }, band);
}

// A card with a title row and a body.
export function card(title: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', { class: 'card-title' }, title), ...body);
}

export function tile(label: string, valueEl: HTMLElement, hint?: HTMLElement | string): HTMLElement {
  return h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label), valueEl, hint ? h('div', { class: 'tile-hint' }, hint) : null);
}

// The "not available yet" state of a panel whose route the server lacks.
export function notAvailable(title: string, text: string): HTMLElement {
  return h(
    'div',
    { class: 'empty' },
    h('div', { class: 'empty-icon', 'aria-hidden': 'true' }),
    h('div', { class: 'empty-title' }, title),
    h('p', null, text),
  );
}
