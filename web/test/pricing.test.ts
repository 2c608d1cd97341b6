import { describe, expect, it } from 'vitest';
import { monthStart, pricingOutlook, signedPercent } from '../src/views/pricing_outlook';

// A POST /api/predictions/pricing answer as the server gives it for an Ames
// home priced with the Texas panel's Austin median forecast.
const answer = {
  model_version: 'avm-1a2b3c4d',
  list_price: 215000,
  lower80: 198000,
  upper80: 233000,
  avm: { predicted: 212480, lower80: 196000, upper80: 229500, lower90: 190100, upper90: 236800 },
  market: {
    region: 'Austin', metric: 'median', months: 2, from_month: '2014-01', to_month: '2014-03',
    data_through: '2013-12', data_age_months: 155, change: 0.0123, lower80: -0.0051, upper80: 0.0297,
  },
  explanation: 'Value $212,480 ...',
};

describe('pricingOutlook', () => {
  it('says the price, the value and the market move with their 80% ranges', () => {
    const o = pricingOutlook(answer);
    expect(o.headline).toBe('List at $215,000 (80%: $198,000 – $233,000)');
    expect(o.value).toBe('Value $212,480 · 80% $196,000 – $229,500 · 90% $190,100 – $236,800');
    expect(o.market).toBe(
      'Austin median +1.2% from 2014-01 to 2014-03 (80%: −0.5% to +3.0%); forecast from data through 2013-12, 155 months old',
    );
  });

  it('charts the value at the first forecast month and the list price at the later one', () => {
    expect(pricingOutlook(answer).chart).toEqual({
      x: [Date.UTC(2014, 0, 1) / 1000, Date.UTC(2014, 2, 1) / 1000],
      price: [212480, 215000],
      lower: [196000, 198000],
      upper: [229500, 233000],
    });
  });

  it('draws nothing over time without a market', () => {
    const o = pricingOutlook({ ...answer, market: null });
    expect(o.market).toBeNull();
    expect(o.chart).toBeNull();
    expect(o.headline).toBe('List at $215,000 (80%: $198,000 – $233,000)');
  });
});

describe('helpers', () => {
  it('signs percentages and reads months', () => {
    expect(signedPercent(0.0123)).toBe('+1.2%');
    expect(signedPercent(-0.05)).toBe('−5.0%');
    expect(signedPercent(Number.NaN)).toBe('–');
    expect(monthStart('2014-03')).toBe(Date.UTC(2014, 2, 1) / 1000);
    expect(Number.isNaN(monthStart('March'))).toBe(true);
  });
});
