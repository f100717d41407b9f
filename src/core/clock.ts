/**
 * Time as a dependency, so deadlines, expiry and heartbeats are tested without sleeping.
 * `schedule` returns a cancel function; cancelling twice is harmless.
 */
export interface Clock {
  now(): number;
  schedule(delayMs: number, fn: () => void): () => void;
}

/** setTimeout caps delays at 2^31-1 ms; longer ones are chained so a far expiry does not fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    // The common case holds one timer and one cancel closure per call: the notification channel keeps one
    // per idle joined socket.
    if (delayMs <= MAX_TIMER_MS) {
      const timer = setTimeout(fn, Math.max(0, delayMs));
      timer.unref();
      return () => clearTimeout(timer);
    }
    let timer: NodeJS.Timeout;
    let cancelled = false;
    const arm = (remaining: number) => {
      const step = Math.min(Math.max(0, remaining), MAX_TIMER_MS);
      timer = setTimeout(() => {
        if (cancelled) return;
        if (remaining > step) arm(remaining - step);
        else fn();
      }, step);
      timer.unref();
    };
    arm(delayMs);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  },
};
