import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, NotAvailable, makeApi } from '../src/api';

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? '' : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('the call did not fail');
}

describe('makeApi', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('carries a 503 Retry-After so a view can ask again when the server says', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => answer(503, { error: 'listings are loading' }, { 'Retry-After': '2' })));
    const e = await failure(makeApi(() => 'tok', () => {}).get('/api/leads/x/matches'));
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).status).toBe(503);
    expect((e as ApiError).message).toBe('listings are loading');
    expect((e as ApiError).retryAfterS).toBe(2);
  });

  it('has no retry time without a usable Retry-After', async () => {
    const api = makeApi(() => 'tok', () => {});
    vi.stubGlobal('fetch', vi.fn(async () => answer(500, { error: 'boom' })));
    expect(((await failure(api.get('/x'))) as ApiError).retryAfterS).toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => answer(503, { error: 'busy' }, { 'Retry-After': 'Wed, 21 Oct 2026 07:28:00 GMT' })));
    expect(((await failure(api.get('/x'))) as ApiError).retryAfterS).toBeNull();
  });

  it('sends the bearer token, tells 401 to the sign-in page and an unknown route apart', async () => {
    const fetchMock = vi.fn(async () => answer(401, { error: 'token expired' }));
    vi.stubGlobal('fetch', fetchMock);
    const unauthorized = vi.fn();
    const api = makeApi(() => 'tok-1', unauthorized);
    expect(((await failure(api.get('/api/leads'))) as ApiError).status).toBe(401);
    expect(unauthorized).toHaveBeenCalledWith(expect.stringMatching(/expired/));
    const init = (fetchMock.mock.calls[0] as unknown[])[1] as RequestInit;
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok-1');
    vi.stubGlobal('fetch', vi.fn(async () => answer(404, { error: 'no such route' })));
    expect(await failure(api.get('/api/nope'))).toBeInstanceOf(NotAvailable);
  });
});
