import type { ProfileId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { BrokerSubscription, DeliveryVerdict, NotificationBroker } from '../core/notification-broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/** A local socket joined to a profile, as the hub sees it. */
export interface ProfileSubscriber {
  deliver(body: Buffer): void;
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
  ) {}

  /** Adds the subscriber; resolves once messages for the profile flow to this node. */
  async join(profile: ProfileId, subscriber: ProfileSubscriber): Promise<void> {
    let entry = this.entries.get(profile);
    if (!entry) {
      const subscribers = new Set<ProfileSubscriber>();
      const previous = this.unsubscribing.get(profile) ?? Promise.resolve();
      const live = previous.then(() => this.broker.subscribe(profile, (body) => this.deliver(subscribers, body)));
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

  private deliver(subscribers: Set<ProfileSubscriber>, body: Buffer): DeliveryVerdict {
    if (subscribers.size === 0) return 'requeue';
    const startedAt = performance.now();
    for (const subscriber of subscribers) subscriber.deliver(body);
    this.metrics?.deliveryLatency.observe((performance.now() - startedAt) / 1000);
    return 'ack';
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
