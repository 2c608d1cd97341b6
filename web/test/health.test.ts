import { describe, expect, it } from 'vitest';
import { ghlWritebackLight, modelLight } from '../src/views/health';

describe('modelLight', () => {
  it('is green for a loaded model', () => {
    expect(modelLight({ status: 'ok', version: 'leads-20261128', detail: '' }, '')).toEqual({
      name: 'Model',
      state: 'ok',
      text: 'leads-20261128',
      detail: '',
    });
  });

  it('says no model is trained when scoring is plain fallback', () => {
    const light = modelLight({ status: 'ok', version: 'fallback', detail: '' }, '');
    expect(light.state).toBe('down');
    expect(light.text).toBe('fallback scoring');
    expect(light.detail).toContain('No trained lead model');
  });

  it("shows the loader's reason when a model on disk did not load", () => {
    const reason = 'kept the previous model(s): lead model var/models/leads: trained by an older reai; retrain the model';
    const light = modelLight({ status: 'degraded', version: 'fallback', detail: reason }, '');
    expect(light.state).toBe('down');
    expect(light.detail).toBe(reason);
    // The previous model still serves: its version shows, the light stays red.
    const kept = modelLight({ status: 'degraded', version: 'leads-old', detail: reason }, '');
    expect(kept.state).toBe('down');
    expect(kept.text).toBe('leads-old');
    expect(kept.detail).toBe(reason);
  });

  it('is unknown when readiness did not answer', () => {
    expect(modelLight(undefined, 'readiness answered HTTP 503')).toEqual({
      name: 'Model',
      state: 'down',
      text: 'unknown',
      detail: 'readiness answered HTTP 503',
    });
  });
});

describe('ghlWritebackLight', () => {
  it('is green while every tenant can be written back', () => {
    expect(ghlWritebackLight({ status: 'ok', detail: '' })).toEqual({ name: 'GoHighLevel', state: 'ok', text: 'writing back', detail: '' });
  });

  it('is red with the count while a grant GHL refused waits for a new install', () => {
    const detail = '1 tenant needs GHL re-authorisation (install the app again); `reai tenant list` names them';
    expect(ghlWritebackLight({ status: 'degraded', detail })).toEqual({
      name: 'GoHighLevel',
      state: 'down',
      text: 'needs re-authorisation',
      detail,
    });
  });

  it('is off when the server runs no write-back', () => {
    expect(ghlWritebackLight(undefined).state).toBe('off');
  });
});
