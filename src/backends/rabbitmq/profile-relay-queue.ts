import type { ConsumeMessage } from 'amqplib';
import type { Logger } from '../../core/logger.js';
import { type ConsumerLane, errorText, laneIndex, type Link, relayQueueLaneCount } from './amqp-link.js';
import type { RelayQueues } from './relay-queues.js';

/** The relay queue's consumer on one link. */
interface Consumer {
  readonly link: Link;
  ready: Promise<void>;
  tag: string | undefined;
  /** Copies may be relayed: the queue is declared, bound and consumed on `link`. */
  live: boolean;
}

/**
 * This node's relay queue for one joined profile (`switchboard.relay.<nodeId>/<profile>`): declared only
 * once the profile has company, consumed again on every new link while it exists, removed (its copies
 * given back) when the profile is left.
 */
export class ProfileRelayQueue {
  /** The queue exists (declared and not deleted since): it is consumed again on every new link. */
  declared = false;
  /** Declaring, binding and consuming the queue on one link; cleared when that link drops. */
  private consumer: Consumer | undefined;
  /** Which of a link's relay queue lanes consumes the queue (by profile, as the mailbox's). */
  private readonly laneIndex: number;

  constructor(
    readonly queue: string,
    readonly mailbox: string,
    private readonly relayQueues: RelayQueues,
    private readonly log: Logger,
    private readonly profileId: string,
    /** Each copy the queue delivers (null: RabbitMQ cancelled the consumer). */
    private readonly onCopy: (link: Link, msg: ConsumeMessage | null) => void,
    /** The queue is consumed on a link: copies may be relayed. */
    private readonly onLive: () => void,
  ) {
    this.laneIndex = laneIndex(profileId, relayQueueLaneCount);
  }

  /** The lane the queue is consumed on: its copies are settled there (an ack on another channel is refused). */
  lane(link: Link): ConsumerLane {
    return link.relayQueueLanes[this.laneIndex]!;
  }

  /** Copies may be relayed on `link` now, with no wait. */
  liveOn(link: Link): boolean {
    return this.consumer?.link === link && this.consumer.live;
  }

  /** The consumer's tag on `link`, if any (the broker cancels it on close). */
  consumerTag(link: Link): string | undefined {
    return this.consumer?.link === link ? this.consumer.tag : undefined;
  }

  /** The link dropped, and the consumer with it. */
  linkDropped(): void {
    this.consumer = undefined;
  }

  /**
   * Declares, binds and consumes the queue on `link`, once per link; the returned promise settles when
   * copies may be relayed (rejects if that failed; the next call retries).
   */
  ensure(link: Link): Promise<void> {
    if (this.consumer?.link === link) return this.consumer.ready;
    // A late caller on a dropped link must not replace the consumer the current link is setting up.
    if (!link.alive) return Promise.reject(new Error('broker link dropped'));
    const consumer: Consumer = { link, ready: Promise.resolve(), tag: undefined, live: false };
    this.consumer = consumer;
    consumer.ready = this.open(link, consumer);
    consumer.ready.catch((err: unknown) => {
      if (this.consumer !== consumer) return; // given up on purpose (unsubscribed, link dropped)
      this.consumer = undefined;
      this.log.error({ profileId: this.profileId, queue: this.queue, reason: errorText(err) }, 'could not set up the relay queue');
    });
    return consumer.ready;
  }

  /**
   * Stops the copies for a profile this node left: unbinds the queue (no new copies), cancels its
   * consumer, gives back what it still holds and deletes it (RelayQueues.remove). Copies already handed
   * to the (gone) sockets settle on their own: with no socket left they are given back the same way.
   */
  async close(link: Link): Promise<void> {
    if (!this.declared && !this.consumer) return;
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer?.link === link) {
      await consumer.ready.catch(() => {});
      if (consumer.tag && link.alive) await this.lane(link).channel.cancel(consumer.tag);
    }
    if (!this.declared) return;
    await this.relayQueues.remove(link, this.queue, this.mailbox);
    this.declared = false;
  }

  private async open(link: Link, consumer: Consumer): Promise<void> {
    await this.relayQueues.declare(link, this.queue, this.mailbox);
    this.declared = true;
    await this.relayQueues.bind(link, this.queue, this.mailbox);
    if (this.consumer !== consumer || !link.alive) throw new Error('relay queue no longer wanted on this link');
    const lane = this.lane(link);
    const { consumerTag } = await lane.channel.consume(
      this.queue,
      lane.acks.tracking((msg) => this.onCopy(link, msg)),
      { exclusive: true },
    );
    consumer.tag = consumerTag;
    consumer.live = true;
    this.log.debug({ profileId: this.profileId, queue: this.queue }, 'relay queue consumed');
    this.onLive();
  }
}
