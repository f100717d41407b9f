/**
 * Listener signatures by event name. A mapped constraint rather than an index signature: an event map that
 * names its events rejects a misspelt one (`on('comandStatus', ...)` does not compile).
 */
export type EventMap<Events> = { [K in keyof Events]: (...args: any[]) => void };

/**
 * A small typed event emitter (browsers have no node:events). `on` returns the function that removes the
 * listener. A listener that throws does not stop the others; its error is reported asynchronously, as an
 * uncaught error, the way EventTarget does.
 */
export class Emitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    const wrapped = ((...args: Parameters<Events[K]>) => {
      off();
      listener(...args);
    }) as Events[K];
    const off = this.on(event, wrapped);
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    set.delete(listener);
    if (set.size === 0) this.listeners.delete(event);
  }

  /** Listeners currently registered, for one event or in total (used to check that nothing leaks). */
  listenerCount(event?: keyof Events): number {
    if (event !== undefined) return this.listeners.get(event)?.size ?? 0;
    let total = 0;
    for (const set of this.listeners.values()) total += set.size;
    return total;
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    this.emitCollecting(event, undefined, ...args);
  }

  /**
   * Like emit, and adds to `work` the promise of each listener that returned one (settled, never rejected:
   * a rejection is reported like a throw), so the caller can wait until the listeners are done.
   */
  protected emitCollecting<K extends keyof Events>(event: K, work: Array<Promise<void>> | undefined, ...args: Parameters<Events[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      const running = callListener(listener, ...args);
      if (running) work?.push(running);
    }
  }
}

/**
 * Calls an application callback so that its failure cannot break the SDK's own bookkeeping or the callbacks
 * after it: a throw (or a rejected promise) is reported as an uncaught error, the way EventTarget does.
 * Returns, when the callback returned a promise (or another thenable), one that settles with it and never
 * rejects.
 */
export function callListener<A extends unknown[]>(listener: (...args: A) => unknown, ...args: A): Promise<void> | undefined {
  try {
    const result = listener(...args);
    if (isThenable(result)) return Promise.resolve(result).then(() => {}, reportListenerError);
  } catch (err) {
    reportListenerError(err);
  }
  return undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

export function reportListenerError(err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === 'function') report(err);
  else
    queueMicrotask(() => {
      throw err;
    });
}
