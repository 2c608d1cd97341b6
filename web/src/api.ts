// Authenticated JSON calls to the public API. A 401 signs the user out;
// a route the server does not have yet answers NotAvailable (never a number).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    // Seconds from a 503's Retry-After (the server is still loading); null when absent.
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

export class NotAvailable extends Error {}

export interface ApiClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
}

export function makeApi(token: () => string, onUnauthorized: (message: string) => void): ApiClient {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${token()}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    let payload: unknown = null;
    const text = await res.text();
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    const error =
      payload && typeof payload === 'object' && 'error' in payload ? String((payload as { error: unknown }).error) : '';
    if (res.status === 401) {
      onUnauthorized(
        /expired/i.test(error)
          ? 'Your session has expired. Sign in again with a fresh token.'
          : 'The server did not accept this token. Sign in again.',
      );
      throw new ApiError(401, error || 'unauthorized');
    }
    if (res.status === 404 && error === 'no such route') throw new NotAvailable(path);
    if (!res.ok) {
      const retryAfter = Number(res.headers.get('Retry-After') ?? '');
      throw new ApiError(res.status, error || `HTTP ${res.status}`, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
    }
    return payload as T;
  }
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
  };
}

// Unauthenticated JSON (readiness): the body is read even on 503.
export async function getPublicJson<T>(path: string): Promise<{ status: number; body: T | null }> {
  const res = await fetch(path, { cache: 'no-store' });
  try {
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return { status: res.status, body: null };
  }
}
