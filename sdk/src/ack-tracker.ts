/**
 * The client side of acknowledged delivery (spec: notify-protocol.md, "Acknowledged delivery"): which `seq`
 * may be acknowledged, and when to send the acknowledgement.
 *
 * Frames are processed concurrently (a handler may return a promise), but acknowledgements are cumulative:
 * `{"action":"ack","seq":n}` says every frame up to `n` was processed. So the tracker acknowledges the
 * highest `seq` below which every frame is done; a later frame finishing first waits for the earlier ones.
 * Acknowledgements are coalesced: one per macrotask turn (a burst of frames handled at once costs one ack),
 * or at once when `batch` frames are ready, so a client neither floods the gateway nor holds its window full.
 */
export interface AckTrackerOptions {
  /** Sends the acknowledgement of every frame up to `seq` (on the socket the frames came from). */
  send(seq: number): void;
  /** Runs `fn` on a later macrotask; returns the function that cancels it. */
  defer(fn: () => void): () => void;
  /** Frames ready to acknowledge that are sent at once rather than at the end of the turn. Default 100. */
  batch?: number;
}

export class AckTracker {
  /** Bumped by reset(): completions of frames from an earlier sequence (another join, another socket) are ignored. */
  private epoch = 0;
  /** Frames received and not yet processed-in-order, oldest first, from `head`. */
  private queue: Array<{ seq: number; done: boolean }> = [];
  private head = 0;
  /** Highest seq such that it and every frame before it were processed. */
  private processed = 0;
  private acked = 0;
  private cancelFlush: (() => void) | undefined;
  private readonly batch: number;

  constructor(private readonly options: AckTrackerOptions) {
    this.batch = Math.max(1, options.batch ?? 100);
  }

  /** Frames received and not acknowledged yet (processing or waiting for the next ack). */
  get unacknowledged(): number {
    return this.queue.length - this.head + (this.processed - this.acked);
  }

  /**
   * A new sequence starts (a join granted ack mode) or the current one ended (the socket dropped, the
   * channel was left): forget it. Nothing of it is acknowledged afterwards.
   */
  reset(): void {
    this.epoch += 1;
    this.queue = [];
    this.head = 0;
    this.processed = 0;
    this.acked = 0;
    this.cancelFlush?.();
    this.cancelFlush = undefined;
  }

  /** Frame `seq` arrived; returns the function that marks it processed (calling it again does nothing). */
  received(seq: number): () => void {
    const epoch = this.epoch;
    const entry = { seq, done: false };
    this.queue.push(entry);
    return () => {
      if (entry.done || epoch !== this.epoch) return;
      entry.done = true;
      this.advance();
    };
  }

  /** Sends the acknowledgement of everything processed in order so far, if not sent yet. */
  flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    if (this.processed <= this.acked) return;
    this.acked = this.processed;
    this.options.send(this.acked);
  }

  private advance(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.done) {
      this.processed = Math.max(this.processed, this.queue[this.head]!.seq);
      this.head += 1;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.processed - this.acked >= this.batch) this.flush();
    else if (this.processed > this.acked && !this.cancelFlush) {
      this.cancelFlush = this.options.defer(() => {
        this.cancelFlush = undefined;
        this.flush();
      });
    }
  }
}

/**
 * The message of an ack-mode frame `{"seq":n,"message":<bytes>}` as the text the backend published: the
 * gateway embeds those bytes verbatim, so they are cut out of the frame rather than serialised again (the
 * `raw` a plain socket would have shown, and the text de-duplication digests). Undefined when the frame is
 * not laid out that way; the caller then serialises the parsed message.
 */
export function embeddedMessageText(frame: string): string | undefined {
  const match = /^\{"seq":\d+,"message":/.exec(frame);
  if (!match || !frame.endsWith('}')) return undefined;
  return frame.slice(match[0].length, -1);
}
