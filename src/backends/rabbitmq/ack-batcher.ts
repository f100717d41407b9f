import type { Channel, Message } from 'amqplib';

type EntryState = 'pending' | 'ack' | 'done';

interface Entry {
  readonly tag: number;
  state: EntryState;
  /** Flushes this settled entry has waited behind a pending one. */
  waited: number;
}

/** The part of an amqplib channel the batcher settles through. */
export type SettlingChannel = Pick<Channel, 'ack' | 'nack'>;

/**
 * Settles the messages of one channel, coalescing acknowledgements: every ack asked for within `ackDelayMs`
 * of the first goes out as a single `basic.ack` with `multiple` for the longest settled run at the front
 * of the channel's outstanding deliveries. A settled message behind a still pending one waits up to
 * `holdBehindPendingFlushes` flushes for that one to settle (then one multiple ack covers both), and is
 * acknowledged alone after that (so a socket that is slow to write or to acknowledge cannot hold back the
 * other profiles' prefetch windows for long).
 * Per-message acks were the largest share of the broker's and amqplib's work per delivered message.
 *
 * A `multiple` ack covers every outstanding tag up to its own, so every delivery on the channel must be
 * registered with `track` and settled through this class; its tag must still be outstanding at the broker
 * (RabbitMQ closes the channel on an unknown tag), which is why it is always the highest tag of the run
 * still waiting for its ack. Nacks go out at once, one by one.
 */
export class AckBatcher {
  /**
   * Deliveries in delivery-tag order; `head` is the first not yet released. Found by tag through their
   * order rather than a Map: a Map's table grew and shrank with every delivery, and in acknowledged
   * delivery those tables outlived scavenges (docs/performance.md, "The 5k/s tail").
   */
  private entries: Entry[] = [];
  private head = 0;
  /** Tracked and neither acknowledged nor nacked at the broker yet. */
  private unreleased = 0;
  /** Settled, not yet acknowledged: behind a pending delivery, or since the last flush. */
  private readonly settledBehind: Entry[] = [];
  private flushScheduled = false;

  constructor(
    private readonly channel: SettlingChannel,
    private readonly schedule: (flush: () => void) => void = afterAckDelay,
  ) {}

  /** A consumer callback for the channel that registers each delivery before `handle` sees it. */
  tracking<M extends Message>(handle: (msg: M | null) => void): (msg: M | null) => void {
    return (msg) => {
      if (msg) this.track(msg);
      handle(msg);
    };
  }

  /** Registers a message just delivered on the channel (in delivery order). */
  track(msg: Message): void {
    const entry: Entry = { tag: msg.fields.deliveryTag, state: 'pending', waited: 0 };
    this.entries.push(entry);
    this.unreleased += 1;
  }

  ack(msg: Message): void {
    const entry = this.find(msg.fields.deliveryTag);
    if (!entry || entry.state !== 'pending') return;
    entry.state = 'ack';
    this.settledBehind.push(entry);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  nack(msg: Message, requeue: boolean): void {
    const entry = this.find(msg.fields.deliveryTag);
    if (!entry || entry.state !== 'pending') return;
    entry.state = 'done';
    this.unreleased -= 1;
    this.send(() => this.channel.nack(tagOnly(entry.tag), false, requeue));
  }

  /** Forgets everything outstanding (the channel's deliveries were all nacked or the channel is gone). */
  clear(): void {
    this.entries = [];
    this.head = 0;
    this.unreleased = 0;
    this.settledBehind.length = 0;
  }

  /** Deliveries tracked and not yet released (for tests and diagnostics). */
  get outstanding(): number {
    return this.unreleased;
  }

  flush(): void {
    this.flushScheduled = false;
    let multipleUpTo: number | undefined;
    while (this.head < this.entries.length && this.entries[this.head]!.state !== 'pending') {
      const entry = this.entries[this.head++]!;
      if (entry.state === 'ack') {
        multipleUpTo = entry.tag;
        this.unreleased -= 1;
      }
      entry.state = 'done';
    }
    if (multipleUpTo !== undefined) this.send(() => this.channel.ack(tagOnly(multipleUpTo), true));
    let kept = 0;
    for (const entry of this.settledBehind) {
      if (entry.state !== 'ack') continue;
      entry.waited += 1;
      if (entry.waited < holdBehindPendingFlushes) {
        this.settledBehind[kept++] = entry;
        continue;
      }
      entry.state = 'done';
      this.unreleased -= 1;
      this.send(() => this.channel.ack(tagOnly(entry.tag), false));
    }
    this.settledBehind.length = kept;
    if (kept > 0) this.scheduleFlush();
    this.compact();
  }

  /** amqplib throws when the channel has closed; RabbitMQ then requeues everything unsettled by itself. */
  private send(settle: () => void): void {
    try {
      settle();
    } catch {
      this.clear();
    }
  }

  /** Entries kept for ordering, settled or not (bounded: see compact). */
  get retained(): number {
    return this.entries.length - this.head;
  }

  /**
   * The entry of a tag still kept, by binary search over the tag-ordered entries from `head` (a channel's
   * tags only grow). Usually the first probe hits: tags are consecutive until compact drops released
   * entries from the middle.
   */
  private find(tag: number): Entry | undefined {
    const { entries } = this;
    let low = this.head;
    let high = entries.length - 1;
    if (low > high) return undefined;
    const guess = low + (tag - entries[low]!.tag);
    if (guess >= low && guess <= high && entries[guess]!.tag === tag) return entries[guess];
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = entries[middle]!.tag;
      if (at === tag) return entries[middle];
      if (at < tag) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  /**
   * Drops released entries from the front and, when a long-pending delivery keeps many settled ones behind
   * it, those too, so memory follows what is outstanding rather than what passed by.
   */
  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.retained > 2 * this.unreleased + 1_024) {
      this.entries = this.entries.slice(this.head).filter((entry) => entry.state !== 'done');
      this.head = 0;
    }
  }
}

/**
 * How long the first ack of a batch waits for others. One event-loop turn was too short: a gateway that
 * keeps up turns its loop every few messages, so acks still went out two or three at a time, each its
 * own frame and syscall (a fifth of the gateway's busy time at 14k messages/s). A few milliseconds gather
 * tens of them and delay nothing a client sees; a crash may deliver that much twice (at least once).
 */
export const ackDelayMs = 5;

/**
 * Flushes (of `ackDelayMs`) a settled delivery waits behind a pending one before it is acknowledged alone.
 * Without the wait, clients in acknowledged delivery, whose verdicts come a round trip later and out of
 * order across profiles, turned nearly every ack into a single one, and RabbitMQ, not the gateway, became
 * the limit (89 % of its CPU at 3.8k messages/s in notify-1000-transient-max-ack).
 */
export const holdBehindPendingFlushes = 4;

function afterAckDelay(flush: () => void): void {
  setTimeout(flush, ackDelayMs);
}

/** amqplib's ack and nack read nothing but the delivery tag. */
function tagOnly(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}
