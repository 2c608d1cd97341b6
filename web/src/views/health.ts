// Health: one light per component, with the last error text.
import { getPublicJson } from '../api';
import { h } from '../dom';
import * as fmt from '../format';
import type { ComponentHealth, Readiness } from '../types';
import type { ConnectionState } from '../stream';

export interface Light {
  name: string;
  state: 'ok' | 'down' | 'off';
  text: string;
  detail: string;
}

// The model light from /readyz's `model`: green only for a loaded model; a
// model on disk that did not load shows the loader's reason (e.g. "retrain
// the model"), plain fallback says no model is trained.
export function modelLight(model: ComponentHealth | undefined, failure: string): Light {
  if (!model) return { name: 'Model', state: 'down', text: 'unknown', detail: failure };
  const loaded = model.version !== undefined && model.version !== '' && model.version !== 'fallback';
  let detail = '';
  if (model.status !== 'ok' && model.detail) detail = model.detail;
  else if (!loaded) detail = 'No trained lead model is loaded; scores come from the rule-based fallback.';
  return {
    name: 'Model',
    state: model.status === 'ok' && loaded ? 'ok' : 'down',
    text: loaded ? (model.version as string) : 'fallback scoring',
    detail,
  };
}

// The GoHighLevel write-back light from /readyz's `ghl_writeback` (absent:
// this server runs no write-back). Red while GHL refused a tenant's grant:
// that tenant's scores wait until the app is installed again, and the
// detail says how many tenants (`reai tenant list` names them).
export function ghlWritebackLight(c: ComponentHealth | undefined): Light {
  if (!c) return { name: 'GoHighLevel', state: 'off', text: 'not running', detail: 'This server writes nothing back to GoHighLevel.' };
  const ok = c.status === 'ok';
  return {
    name: 'GoHighLevel',
    state: ok ? 'ok' : 'down',
    text: ok ? 'writing back' : 'needs re-authorisation',
    detail: ok ? '' : c.detail || 'no detail given',
  };
}

export class HealthView {
  readonly el: HTMLElement;
  private readonly grid = h('div', { class: 'lights', id: 'health-lights' });
  private readonly stamp = h('p', { class: 'muted small' });
  private checkedAt = 0;
  connection: ConnectionState = 'connecting';

  constructor() {
    this.el = h('div', { class: 'view', id: 'view-health' }, this.grid, this.stamp);
  }

  async refresh(): Promise<void> {
    let ready: Readiness | null = null;
    let failure = '';
    try {
      const r = await getPublicJson<Readiness>('/readyz');
      ready = r.body;
      if (!ready) failure = `readiness answered HTTP ${r.status}`;
    } catch (e) {
      failure = `the server did not answer: ${(e as Error).message}`;
    }
    this.checkedAt = Date.now();
    const part = (name: string, key: string, okText: string): Light => {
      const c = ready?.[key] as ComponentHealth | undefined;
      if (!c) return { name, state: 'down', text: 'unknown', detail: failure || 'not reported' };
      const ok = c.status === 'ok';
      return { name, state: ok ? 'ok' : 'down', text: ok ? okText : 'unavailable', detail: ok ? '' : c.detail || 'no detail given' };
    };
    const model = ready?.model as ComponentHealth | undefined;
    const lights: Light[] = [
      part('Store', 'store', 'writing and reading'),
      part('Bus', 'bus', 'delivering'),
      part('Cache', 'cache', 'serving'),
      modelLight(model, failure),
      ready && 'webhook' in ready
        ? part('Webhook', 'webhook', 'receiving')
        : { name: 'Webhook', state: 'off', text: 'not configured', detail: 'This server does not report a GoHighLevel webhook.' },
      ghlWritebackLight(ready?.ghl_writeback as ComponentHealth | undefined),
      {
        name: 'Live stream',
        state: this.connection === 'live' ? 'ok' : 'down',
        text: this.connection === 'live' ? 'connected' : this.connection,
        detail: this.connection === 'live' ? '' : 'The page reconnects by itself and replays what it missed.',
      },
    ];
    this.grid.replaceChildren(
      ...lights.map((l) =>
        h(
          'div',
          { class: `light light-${l.state}`, 'data-component': l.name.toLowerCase() },
          h('span', { class: 'lamp', 'aria-hidden': 'true' }),
          h('div', null, h('div', { class: 'light-name' }, l.name), h('div', { class: 'light-text' }, l.text), l.detail ? h('div', { class: 'light-detail muted small' }, l.detail) : null),
        ),
      ),
    );
    this.stamp.textContent = `Checked ${fmt.clock(this.checkedAt)}${ready ? ` · overall: ${String(ready.status)}` : ''}`;
  }
}
