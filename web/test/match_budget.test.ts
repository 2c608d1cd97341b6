import { describe, expect, it } from 'vitest';
import { matchBudgetLine } from '../src/views/match_budget';

describe('matchBudgetLine', () => {
  it('says the matches follow what the buyer did, and why', () => {
    const budget = {
      stated: 150000,
      effective: 485350,
      follows: 'behaviour',
      why: 'you saved and toured 4 homes at 465k-536k since stating 150k',
    };
    expect(matchBudgetLine(budget)).toBe(
      'Matched up to $485,350, over the stated $150,000: you saved and toured 4 homes at 465k-536k since stating 150k',
    );
  });

  it('says the matches keep to a budget as stated', () => {
    expect(matchBudgetLine({ stated: 250000, effective: 250000, follows: 'statement', why: 'as stated' })).toBe(
      'Matched to the stated budget, $250,000',
    );
  });

  it('says nothing without a budget or with one it cannot read', () => {
    expect(matchBudgetLine(null)).toBeNull();
    expect(matchBudgetLine(undefined)).toBeNull();
    expect(matchBudgetLine([1, 2])).toBeNull();
    expect(matchBudgetLine({ stated: '150000', effective: 150000, follows: 'statement' })).toBeNull();
    expect(matchBudgetLine({ stated: 150000, follows: 'behaviour' })).toBeNull();
  });
});
