import type { Clock } from '../core/clock.js';
import { ackModeFrame } from './ack-frame.js';
import type { WriteCallback } from './pending-delivery.js';

export interface AckWindowOptions {
  /** Unacknowledged frames allowed on the socket; later messages wait here (bounded by the broker's prefetch). */
  size: number;
  /** No acknowledgement for this long while frames are unacknowledged: `onTimeout`. */
  timeoutMs: number;
  clock: Clock;
}

export interface AckWindowHooks {
  /** Writes one frame; false when the socket is gone. */
  send(frame: Buffer): boolean;
  onTimeout(): void;
  /** The number of unacknowledged frames changed by `delta` (for the node-wide gauge). */
  onUnackedChange(delta: number): void;
}

interface Waiting {
  readonly body: Buffer;
  readonly onAcknowledged: WriteCallback;
}

/**
 * One ack-mode socket's sequence numbers and outstanding frames (spec: notify-protocol.md, "Acknowledged
 * delivery"). Sequence numbers start at 1 per window, that is per join. A message's callback runs once: on
 * the client's cumulative ack, or with an error from `fail` when the socket closes or leaves.
 */
export class AckWindow {
  private nextSeq = 1;
  /** Callbacks of frames `ackedUpTo + 1 .. nextSeq - 1`, in order. */
  private readonly unacked: WriteCallback[] = [];
  private readonly waiting: Waiting[] = [];
  private ackedUpTo = 0;
  private lastProgressAt = 0;
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly options: AckWindowOptions,
    private readonly hooks: AckWindowHooks,
  ) {}

  /** Sends the message now, or queues it while the window is full. False when the socket is gone. */
  offer(body: Buffer, onAcknowledged: WriteCallback): boolean {
    if (this.unacked.length >= this.options.size) {
      this.waiting.push({ body, onAcknowledged });
      return true;
    }
    return this.sendFrame(body, onAcknowledged);
  }

  /** Applies a cumulative ack; 'unsent' when the client acknowledged a frame it was never sent. */
  acknowledge(seq: number): 'ok' | 'unsent' {
    if (seq >= this.nextSeq) return 'unsent';
    if (seq <= this.ackedUpTo) return 'ok';
    const released = this.unacked.splice(0, seq - this.ackedUpTo);
    this.ackedUpTo = seq;
    this.lastProgressAt = this.options.clock.now();
    this.hooks.onUnackedChange(-released.length);
    for (const onAcknowledged of released) onAcknowledged();
    while (this.waiting.length > 0 && this.unacked.length < this.options.size) {
      const next = this.waiting.shift()!;
      if (!this.sendFrame(next.body, next.onAcknowledged)) next.onAcknowledged(new Error('socket closed'));
    }
    return 'ok';
  }

  /** The socket closed or left: every message it did not acknowledge fails. Returns how many. */
  fail(reason: Error): number {
    this.stopTimer();
    const unacked = this.unacked.splice(0);
    const waiting = this.waiting.splice(0);
    if (unacked.length > 0) this.hooks.onUnackedChange(-unacked.length);
    for (const onAcknowledged of unacked) onAcknowledged(reason);
    for (const { onAcknowledged } of waiting) onAcknowledged(reason);
    return unacked.length + waiting.length;
  }

  get unacknowledged(): number {
    return this.unacked.length;
  }

  private sendFrame(body: Buffer, onAcknowledged: WriteCallback): boolean {
    if (!this.hooks.send(ackModeFrame(this.nextSeq, body))) return false;
    this.nextSeq += 1;
    this.unacked.push(onAcknowledged);
    this.hooks.onUnackedChange(1);
    if (this.unacked.length === 1) this.startTimer();
    return true;
  }

  /**
   * One timer per window, not per frame or ack: it stays armed while the window empties and fills again (a
   * socket at a few messages a second would otherwise set and clear a timer per message), and on firing
   * checks whether an ack came meanwhile. It disarms when it finds nothing unacknowledged; `fail` stops it.
   */
  private startTimer(): void {
    this.lastProgressAt = this.options.clock.now();
    if (this.cancelTimer) return;
    this.arm(this.options.timeoutMs);
  }

  private arm(delayMs: number): void {
    this.cancelTimer = this.options.clock.schedule(delayMs, () => {
      this.cancelTimer = undefined;
      if (this.unacked.length === 0) return;
      const quietFor = this.options.clock.now() - this.lastProgressAt;
      if (quietFor >= this.options.timeoutMs) this.hooks.onTimeout();
      else this.arm(this.options.timeoutMs - quietFor);
    });
  }

  private stopTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }
}
