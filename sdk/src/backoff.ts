/** Reconnection policy: exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** Delay before the first retry (before jitter). Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of any delay. Default 30 s. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is randomised, 0 (none) to 1 (full jitter). Default 0.5. */
  jitter?: number;
  /** Give up after this many consecutive failed attempts (the client then closes). Default: never. */
  maxAttempts?: number;
}

export const defaultBackoff: Required<Omit<BackoffOptions, 'maxAttempts'>> = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
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
