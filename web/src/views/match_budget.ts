// The budget a buyer's matches are held to, as the match answers carry it
// (`budget: {stated, effective, follows, why}`), in one line an agent reads
// before the list: whether the matches follow what the buyer said or what
// the buyer did. No DOM, so unit tests read it.
import * as fmt from '../format';

// null when the answer has no budget (the buyer states none) or it is not
// one the server would send.
export function matchBudgetLine(budget: unknown): string | null {
  if (!budget || typeof budget !== 'object' || Array.isArray(budget)) return null;
  const b = budget as Record<string, unknown>;
  const stated = typeof b.stated === 'number' ? b.stated : Number.NaN;
  const effective = typeof b.effective === 'number' ? b.effective : Number.NaN;
  if (!Number.isFinite(stated) || !Number.isFinite(effective)) return null;
  if (b.follows === 'behaviour') {
    const why = typeof b.why === 'string' && b.why ? `: ${b.why}` : '';
    return `Matched up to ${fmt.usd(effective)}, over the stated ${fmt.usd(stated)}${why}`;
  }
  return `Matched to the stated budget, ${fmt.usd(stated)}`;
}
