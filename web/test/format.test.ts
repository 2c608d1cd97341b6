import { describe, expect, it } from 'vitest';
import { parseToken, isExpired, tokenFromFragment } from '../src/auth';
import * as fmt from '../src/format';

describe('format', () => {
  it('formats for people', () => {
    expect(fmt.int(1234567)).toBe('1,234,567');
    expect(fmt.usd(425000)).toBe('$425,000');
    expect(fmt.usd(null)).toBe('–');
    expect(fmt.percent(0.1234, 1)).toBe('12.3%');
    expect(fmt.millis(0.0094)).toBe('9.4 µs');
    expect(fmt.millis(1.234)).toBe('1.23 ms');
    expect(fmt.millis(2500)).toBe('2.5 s');
    expect(fmt.ago(0, 3000)).toBe('just now');
    expect(fmt.ago(0, 42000)).toBe('42 s ago');
    expect(fmt.ago(0, 3 * 60000 + 10)).toBe('3 min ago');
    expect(fmt.ago(0, 5 * 3600000)).toBe('5 h ago');
    expect(fmt.ago(0, 3 * 86400000)).toBe('3 days ago');
    expect(fmt.humanize('property_view')).toBe('Property view');
  });
});

function jwt(claims: object): string {
  const b64 = (s: string) => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return `${b64('{"alg":"HS256"}')}.${b64(JSON.stringify(claims))}.sig`;
}

describe('auth', () => {
  it('reads tenant, role and expiry', () => {
    const s = parseToken(jwt({ tenant: 'demo', role: 'agent', exp: 100 }));
    expect(s).toMatchObject({ tenant: 'demo', role: 'agent', expiresAt: 100 });
    expect(isExpired(s!, 100_000)).toBe(true);
    expect(isExpired(s!, 99_000)).toBe(false);
  });
  it('rejects what is not a token', () => {
    expect(parseToken('hello')).toBeNull();
    expect(parseToken('a.b.c')).toBeNull();
    expect(parseToken(jwt({ role: 'agent' }))).toBeNull();
  });
  it('finds the token in a fragment', () => {
    expect(tokenFromFragment('#token=a.b.c')).toBe('a.b.c');
    expect(tokenFromFragment('#view=x&token=a%2Eb.c')).toBe('a.b.c');
    expect(tokenFromFragment('#/live')).toBeNull();
  });
});
