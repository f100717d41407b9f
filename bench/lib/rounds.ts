/**
 * Several rounds of the same scenarios in one run (`--rounds`): on this two-core machine one pair of rows
 * can land anywhere in a wide spread (the one-node row alone ranged 16.9–22.9 µs per delivery within an
 * hour), so a target judged on one pair is judged on chance. Each round keeps its own pairs (a two-node row
 * against the one-node row of the same round); a target is judged on the median of the rounds, and how
 * many rounds met it is shown beside it. Pure, so the arithmetic is tested without a gateway.
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Rounds that had a value. */
  count: number;
}

/** Median (the mean of the middle two for an even count), minimum and maximum; undefined with no value. */
export function spreadOf(values: readonly (number | null | undefined)[]): Spread | undefined {
  const present = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (present.length === 0) return undefined;
  const middle = present.length >> 1;
  const median = present.length % 2 === 1 ? present[middle]! : (present[middle - 1]! + present[middle]!) / 2;
  return { median, min: present[0]!, max: present[present.length - 1]!, count: present.length };
}

/** How many of the verdicts are `true`, out of those given (null: not judged in that round). */
export function metCount(verdicts: readonly (boolean | null | undefined)[]): { met: number; judged: number } {
  const judged = verdicts.filter((v): v is boolean => typeof v === 'boolean');
  return { met: judged.filter(Boolean).length, judged: judged.length };
}

/** The rows of each round, in round order (rounds numbered from 1). */
export function byRound<R extends { round: number }>(rows: readonly R[], rounds: number): R[][] {
  return Array.from({ length: rounds }, (_, i) => rows.filter((row) => row.round === i + 1));
}

/** `median (min to max)`, with `digits` decimals ("to": the figures may be negative). */
export function formatSpread(spread: Spread | undefined, digits = 2): string {
  if (!spread) return '—';
  const f = (v: number) => v.toFixed(digits);
  return spread.count === 1 ? f(spread.median) : `${f(spread.median)} (${f(spread.min)} to ${f(spread.max)})`;
}
