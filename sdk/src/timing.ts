import { AbortError, SwitchboardError, TimeoutError } from './errors.js';

/**
 * Time as an option, so every delay of the SDK (reconnection, heartbeat, timeouts, retry sleeps) can be driven
 * by a test clock. `schedule` returns a cancel function; cancelling twice is harmless.
 */
export interface Clock {
  now(): number;
  /** `weak`: the timer alone must not keep a Node process alive (it runs beside an open socket that does). */
  schedule(delayMs: number, fn: () => void, options?: { weak?: boolean }): () => void;
}

/** setTimeout caps delays at 2^31-1 ms; a longer one would fire at once, so it is capped instead. */
const maxTimerMs = 2_147_483_647;

/**
 * The platform's timers. Weak ones are unref'd in Node (browsers have no such notion). A deadline of an
 * awaited call or a reconnection stays referenced: a process awaiting them must see them settle, not exit.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, fn, options) {
    const timer = setTimeout(fn, Math.min(maxTimerMs, Math.max(0, delayMs)));
    if (options?.weak) (timer as { unref?: () => void }).unref?.();
    return () => clearTimeout(timer);
  },
};

/** Options every awaited call of the SDK accepts. */
export interface CallOptions {
  /**
   * Rejects the call with TimeoutError this many ms after the call (not after the frame was sent: time spent
   * waiting for a connection counts). `Infinity` waits for ever. Each method documents its default.
   */
  timeoutMs?: number;
  /** Rejects the call with AbortError when aborted; a request not yet sent is then never sent. */
  signal?: AbortSignal;
}

/** What to do with a request made while the client is reconnecting after losing its connection. */
export type OfflinePolicy = 'queue' | 'fail';

/** Options of the calls that can fail fast while the client is reconnecting. */
export interface OfflineOptions {
  /**
   * `queue`: wait for the next socket, within the call's timeout. `fail`: reject at once with
   * NotConnectedError (certainly not sent). Each method documents its default.
   */
  whenOffline?: OfflinePolicy;
}

export type Settle<T> = {
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  /** Registers work to undo once the call settles (however it settles); runs at once if it already has. */
  onSettled: (cleanup: () => void) => void;
  readonly settled: boolean;
};

/**
 * A promise that settles, whatever happens: `start` does the work and may resolve or reject; the deadline
 * (counted from now) and the signal reject it otherwise. Every cleanup registered runs exactly once when it
 * settles, so no timer, listener or waiter outlives the call.
 */
export function settling<T>(
  clock: Clock,
  what: string,
  options: { timeoutMs: number; signal?: AbortSignal | undefined | Array<AbortSignal | undefined> },
  start: (settle: Settle<T>) => void,
): Promise<T> {
  return new Promise<T>((resolvePromise, rejectPromise) => {
    const cleanups: Array<() => void> = [];
    let settled = false;
    const finish = () => {
      settled = true;
      for (const cleanup of cleanups.splice(0)) cleanup();
    };
    const settle: Settle<T> = {
      resolve: (value) => {
        if (settled) return;
        finish();
        resolvePromise(value);
      },
      reject: (error) => {
        if (settled) return;
        finish();
        rejectPromise(error);
      },
      onSettled: (cleanup) => {
        if (settled) cleanup();
        else cleanups.push(cleanup);
      },
      get settled() {
        return settled;
      },
    };
    const { timeoutMs } = options;
    const signals = (Array.isArray(options.signal) ? options.signal : [options.signal]).filter((s): s is AbortSignal => s !== undefined);
    const aborted = signals.find((s) => s.aborted);
    if (aborted) {
      rejectPromise(abortError(aborted, what));
      return;
    }
    for (const signal of signals) {
      const onAbort = () => settle.reject(abortError(signal, what));
      signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener('abort', onAbort));
    }
    if (Number.isFinite(timeoutMs)) {
      cleanups.push(clock.schedule(timeoutMs, () => settle.reject(new TimeoutError(`${what}: no answer within ${timeoutMs} ms`, timeoutMs))));
    }
    try {
      start(settle);
    } catch (err) {
      settle.reject(err);
    }
  });
}

/**
 * Waits `delayMs` on a weak timer (callers sleep beside an open socket); rejects with AbortError at once when
 * a signal aborts, and its timer is then cancelled.
 */
export function sleep(clock: Clock, delayMs: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  return new Promise((resolve, reject) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    const aborted = live.find((s) => s.aborted);
    if (aborted) {
      reject(abortError(aborted, 'wait'));
      return;
    }
    const cleanup = () => {
      cancel();
      for (const s of live) s.removeEventListener('abort', onAbort);
    };
    const onAbort = (event: Event) => {
      cleanup();
      reject(abortError(event.target as AbortSignal, 'wait'));
    };
    const cancel = clock.schedule(
      delayMs,
      () => {
        cleanup();
        resolve();
      },
      { weak: true },
    );
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The SDK's AbortError (one `instanceof` for every abort; the signal's reason is its `cause`), except for the
 * SDK's own signals, aborted with the error to report (ClientClosedError when the client closes).
 */
export function abortError(signal: AbortSignal, what: string): SwitchboardError {
  if (signal.reason instanceof SwitchboardError) return signal.reason;
  return new AbortError(`${what}: aborted`, signal.reason);
}
