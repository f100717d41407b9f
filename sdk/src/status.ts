import { Emitter } from './emitter.js';

/**
 * `disconnected`: no socket and none coming until `connect()` (or a call that needs one): after
 * `disconnect()`, or when the client has nothing to hold a socket for (the notification client with no
 * channel to join). `closed` is final.
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface StatusEvent {
  status: ConnectionStatus;
  /** Close code of the socket that ended (reconnecting, disconnected, closed), when it closed with one. */
  code?: number;
  /** Its close reason, when it gave one. */
  reason?: string;
  /** Reconnection attempt number (reconnecting). */
  attempt?: number;
  /** Delay before that attempt (reconnecting). */
  delayMs?: number;
  /** Why the previous socket ended or the client closed, when known. */
  error?: Error;
}

/**
 * The status stream of a client: the current status, listeners, and an async iterator. The iterator
 * yields every status from the moment it is created and ends after `closed`.
 */
export class StatusStream extends Emitter<{ status: (event: StatusEvent) => void }> {
  private current: StatusEvent = { status: 'closed' };

  get value(): StatusEvent {
    return this.current;
  }

  push(event: StatusEvent): void {
    this.current = event;
    this.emit('status', event);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StatusEvent> {
    const queue: StatusEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const off = this.on('status', (event) => {
      queue.push(event);
      wake?.();
    });
    const iterator: AsyncIterableIterator<StatusEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const event = queue.shift();
        if (!event) return { done: true, value: undefined };
        if (event.status === 'closed') {
          done = true;
          off();
        }
        return { done: false, value: event };
      },
      return: async () => {
        done = true;
        off();
        wake?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}
