import type { ProfileId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { BrokerSubscription, DeliveryVerdict, NotificationBroker } from '../core/notification-broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/** Called once per accepted message: no error once its bytes were written out, an error if the socket died first. */
export type WriteCallback = (err?: Error | null) => void;

/** A local socket joined to a profile, as the hub sees it. */
export interface ProfileSubscriber {
  /**
   * Writes (or holds, until the join reply went out) one message. Returns false when the socket is gone
   * for good; `onWritten` is then never called. Otherwise `onWritten` is called exactly once, later.
   */
  deliver(body: Buffer, onWritten: WriteCallback): boolean;
}

interface ProfileEntry {
  readonly subscribers: Set<ProfileSubscriber>;
  /** Resolves once the broker delivers to this node; rejects when the broker refused. */
  readonly live: Promise<BrokerSubscription>;
}

/**
 * This node's profiles and their local sockets. The broker is subscribed on a profile's first local join
 * and unsubscribed on its last leave, so broker load grows with profiles, not sockets.
 * One subscription per profile at a time: a join that follows a last leave waits for the unsubscribe.
 */
export class ProfileHub {
  private readonly entries = new Map<ProfileId, ProfileEntry>();
  private readonly unsubscribing = new Map<ProfileId, Promise<void>>();

  constructor(
    private readonly broker: NotificationBroker,
    private readonly log: Logger,
    private readonly metrics?: GatewayMetrics,
    /** Larger messages are rejected (dead-lettered by the broker), never written to a socket. */
    private readonly maxMessageBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Adds the subscriber; resolves once messages for the profile flow to this node. */
  async join(profile: ProfileId, subscriber: ProfileSubscriber): Promise<void> {
    let entry = this.entries.get(profile);
    if (!entry) {
      const subscribers = new Set<ProfileSubscriber>();
      const previous = this.unsubscribing.get(profile) ?? Promise.resolve();
      const live = previous.then(() => this.broker.subscribe(profile, (body) => this.deliver(profile, subscribers, body)));
      entry = { subscribers, live };
      this.entries.set(profile, entry);
      const created = entry;
      live.catch(() => {
        if (this.entries.get(profile) === created) this.entries.delete(profile);
      });
    }
    entry.subscribers.add(subscriber);
    try {
      await entry.live;
    } catch (err) {
      entry.subscribers.delete(subscriber);
      throw err;
    }
  }

  leave(profile: ProfileId, subscriber: ProfileSubscriber): void {
    const entry = this.entries.get(profile);
    if (!entry || !entry.subscribers.delete(subscriber) || entry.subscribers.size > 0) return;
    this.entries.delete(profile);
    const done = entry.live
      .then((subscription) => subscription.unsubscribe())
      .catch((err: unknown) => this.log.warn({ profileId: profile, err: errorText(err) }, 'broker unsubscribe failed'))
      .finally(() => {
        if (this.unsubscribing.get(profile) === done) this.unsubscribing.delete(profile);
      });
    this.unsubscribing.set(profile, done);
  }

  /** Profiles joined on this node with their local socket counts. */
  snapshot(): Array<{ profileId: ProfileId; sockets: number }> {
    return [...this.entries].map(([profileId, entry]) => ({ profileId, sockets: entry.subscribers.size }));
  }

  /** Resolves once every pending unsubscribe has finished (used on shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.unsubscribing.values()]);
  }

  /**
   * Hands a message to every local socket of the profile. The verdict settles `ack` as soon as one socket
   * wrote it out (the fastest socket drives the broker's window; a slower one's buffer grows until the
   * transport closes it as a slow consumer), `requeue` when every socket died first (the broker keeps it for
   * the next join). Sockets found gone are dropped here, so a dead socket cannot bounce messages back to the
   * broker until its close event arrives.
   */
  private deliver(profile: ProfileId, subscribers: Set<ProfileSubscriber>, body: Buffer): DeliveryVerdict | Promise<DeliveryVerdict> {
    if (subscribers.size === 0) return 'requeue';
    if (body.length > this.maxMessageBytes) {
      this.log.warn({ profileId: profile, bytes: body.length, max: this.maxMessageBytes }, 'message dead-lettered: larger than notify.maxMessageBytes');
      return 'reject';
    }
    const delivery = new PendingDelivery(performance.now(), this.metrics);
    let gone: ProfileSubscriber[] | undefined;
    for (const subscriber of subscribers) {
      if (subscriber.deliver(body, delivery.onWritten)) delivery.pending += 1;
      else (gone ??= []).push(subscriber);
    }
    if (gone) for (const subscriber of gone) this.leave(profile, subscriber);
    if (delivery.pending === 0) return 'requeue';
    return new Promise<DeliveryVerdict>((resolve) => delivery.settle(resolve));
  }
}

/** One message on its way to a profile's local sockets. Write callbacks are always asynchronous. */
class PendingDelivery {
  pending = 0;
  private verdict: DeliveryVerdict | undefined;
  private resolve: ((verdict: DeliveryVerdict) => void) | undefined;

  constructor(
    private readonly startedAt: number,
    private readonly metrics: GatewayMetrics | undefined,
  ) {}

  readonly onWritten: WriteCallback = (err) => {
    this.pending -= 1;
    if (this.verdict) return;
    if (!err) {
      this.metrics?.deliveryLatency.observe((performance.now() - this.startedAt) / 1000);
      this.decide('ack');
    } else if (this.pending === 0) {
      this.decide('requeue');
    }
  };

  settle(resolve: (verdict: DeliveryVerdict) => void): void {
    this.resolve = resolve;
    if (this.verdict) resolve(this.verdict);
  }

  private decide(verdict: DeliveryVerdict): void {
    this.verdict = verdict;
    this.resolve?.(verdict);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
