import { describe, expect, it } from 'vitest';
import { dataAge } from '../src/views/markets';

describe('dataAge', () => {
  it('says where a market forecast\'s data ends and how old it is', () => {
    // GET /api/predictions/market-trends on the shipped 2008-2013 panel in 2026-11.
    expect(dataAge({ origin: '2013-12', data_through: '2013-12', data_age_months: 155 })).toBe(
      'data through 2013-12, 155 months old',
    );
    expect(dataAge({ data_through: '2026-10', data_age_months: 1 })).toBe('data through 2026-10, 1 month old');
    expect(dataAge({ data_through: '2026-11', data_age_months: 0 })).toBe('data through 2026-11, current');
  });

  it("reads a pricing answer's market outlook the same way", () => {
    const market = { region: 'Austin', from_month: '2014-01', to_month: '2014-03', data_through: '2013-12', data_age_months: 1234 };
    expect(dataAge(market)).toBe('data through 2013-12, 1,234 months old');
  });

  it('falls back to the origin, and says nothing it does not know', () => {
    // An older server: `origin` only, no age.
    expect(dataAge({ origin: '2013-12' })).toBe('data through 2013-12');
    expect(dataAge({ model_version: 'm1' })).toBeNull();
    expect(dataAge({ data_through: null, data_age_months: 3 })).toBeNull();
  });
});
