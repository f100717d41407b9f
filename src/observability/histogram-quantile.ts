/** One cumulative histogram bucket: observations ≤ `le` (Infinity for the +Inf bucket). */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The q-quantile of a cumulative histogram, the way Prometheus's histogram_quantile estimates it (linear
 * interpolation inside the bucket the rank falls in; the lower bound of the first bucket is 0; a rank in the
 * +Inf bucket answers the highest finite bound), so the console and a Grafana panel over the same buckets
 * agree. Null when the histogram holds no observation.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total <= 0 || sorted.at(-1)!.le !== Infinity) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let below = 0;
  let lower = 0;
  for (const [i, bucket] of sorted.entries()) {
    if (bucket.count >= rank && bucket.count > below) {
      if (bucket.le === Infinity) return i > 0 ? sorted[i - 1]!.le : null;
      return lower + ((bucket.le - lower) * (rank - below)) / (bucket.count - below);
    }
    below = bucket.count;
    lower = bucket.le;
  }
  return null;
}

/** Bucket counts of `now` minus those of `before` (same bounds): the observations made in between. */
export function bucketDelta(now: readonly Bucket[], before: readonly Bucket[]): Bucket[] {
  const earlier = new Map(before.map((b) => [b.le, b.count]));
  return now.map((b) => ({ le: b.le, count: Math.max(0, b.count - (earlier.get(b.le) ?? 0)) }));
}
