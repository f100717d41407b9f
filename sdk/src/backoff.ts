/** Reconnection policy: exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** Delay before the first retry (before jitter). Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of any delay. Default 30 s. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /**
   * Fraction of the delay that is randomised, 0 (none) to 1 (full jitter: anywhere between 0 and the delay).
   * Default 1: clients dropped together by one event spread over the whole window instead of returning in step.
   */
  jitter?: number;
  /**
   * Give up after this many consecutive failed attempts (the client then closes and every awaited call
   * rejects). A connection counts as successful only once it was stable (see `stableAfterMs`). Default: never.
   */
  maxAttempts?: number;
  /**
   * After the gateway closed with 1001 (node draining or restarting), 1012 or 1013, the delay is drawn from at
   * least this window, so the clients of a drained node do not all land on the survivors at once. Default 5 s.
   */
  drainSpreadMs?: number;
  /**
   * A connection counts as stable, and the attempt count (hence the delay) starts again from the first step,
   * once it has stayed open this long, or earlier when the client knows it works (the notification client
   * after a join, the control client after a first successful reply). Default 10 s.
   */
  stableAfterMs?: number;
}

export const defaultBackoff: Required<Omit<BackoffOptions, 'maxAttempts'>> = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 1,
  drainSpreadMs: 5_000,
  stableAfterMs: 10_000,
};

/**
 * Delay before retry number `attempt` (1-based): min(max, initial * factor^(attempt-1)), of which the
 * `jitter` fraction is drawn at random so that many clients dropped at once do not return in step.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialDelayMs, maxDelayMs, factor, jitter } = { ...defaultBackoff, ...options };
  const base = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt - 1));
  const spread = base * Math.min(1, Math.max(0, jitter));
  return Math.round(base - spread + random() * spread);
}

/** Close codes by which a gateway says "I am going away, come back elsewhere or later". */
export const drainCloseCodes: ReadonlySet<number> = new Set([1001, 1012, 1013]);
