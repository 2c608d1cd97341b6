// The token: where it comes from (pasted, or /#token=... once), where it is
// kept (sessionStorage: gone when the tab closes) and what it says.

export interface Session {
  token: string;
  tenant: string;
  role: string;
  expiresAt: number; // Unix seconds; 0 when the token has no exp
}

const kKey = 'reai_token';

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// Reads the claims of a JWT without verifying it (the server verifies).
// null when it is not a JWT with a tenant.
export function parseToken(token: string): Session | null {
  const t = token.trim();
  const parts = t.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1])) as Record<string, unknown>;
    const tenant = claims.tenant ?? claims.tenant_id;
    if (typeof tenant !== 'string' || !tenant) return null;
    return {
      token: t,
      tenant,
      role: typeof claims.role === 'string' ? claims.role : 'agent',
      expiresAt: typeof claims.exp === 'number' ? claims.exp : 0,
    };
  } catch {
    return null;
  }
}

export function isExpired(s: Session, nowMs: number): boolean {
  return s.expiresAt > 0 && s.expiresAt * 1000 <= nowMs;
}

// The token carried in a URL fragment such as "#token=abc&view=live".
export function tokenFromFragment(hash: string): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

// Moves a fragment token into sessionStorage and removes it from the
// address bar and history, so it is not bookmarked or shared by accident.
export function adoptFragmentToken(loc: Location, hist: History, storage: Storage): void {
  const t = tokenFromFragment(loc.hash);
  if (!t) return;
  storage.setItem(kKey, t);
  hist.replaceState(null, '', loc.pathname + loc.search + '#/live');
}

export function storedToken(storage: Storage): string | null {
  return storage.getItem(kKey);
}

export function storeToken(storage: Storage, token: string): void {
  storage.setItem(kKey, token.trim());
}

export function forgetToken(storage: Storage): void {
  storage.removeItem(kKey);
}
