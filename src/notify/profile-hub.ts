import { type Clock, systemClock } from '../core/clock.js';
import type { ProfileId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { BrokerSubscription, DeliveryVerdict, NotificationBroker } from '../core/notification-broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { PendingDelivery, type WriteCallback } from './pending-delivery.js';

export type { WriteCallback } from './pending-delivery.js';

/** A local socket joined to a profile, as the hub sees it. */
export interface ProfileSubscriber {
  /**
   * True for an ack-mode socket: its `onWritten` reports the client's acknowledgement (or, with an error,
   * that the socket closed or left without acknowledging) instead of the write to the kernel.
   */
  readonly acknowledges: boolean;
  /**
   * Writes (or holds, until the join reply went out) one message. Returns false when the socket is gone
   * for good; `onWritten` is then never called. Otherwise `onWritten` is called exactly once, later.
   */
  deliver(body: Buffer, onWritten: WriteCallback): boolean;
}

export interface ProfileHubOptions {
  /** Larger messages are rejected (dead-lettered by the broker), never written to a socket. */
  maxMessageBytes?: number;
  /** How long a profile waits for an ack-mode client that dropped to join again (0: it does not wait). */
  ackResumeMs?: number;
  clock?: Clock;
}

/**
 * After an ack-mode socket closed (not left): messages are still written to the profile's plain sockets
 * but stay unsettled, so a returning ack-mode client gets them again instead of finding them settled by
 * a plain socket that happened to be joined. Bounded by the broker's prefetch (unsettled messages stop
 * its deliveries) and by the window's length.
 */
interface ResumeWindow {
  readonly held: Set<PendingDelivery>;
  cancel: () => void;
}

interface ProfileEntry {
  readonly subscribers: Set<ProfileSubscriber>;
  /** Resolves once the broker delivers to this node; rejects when the broker refused. */
  readonly live: Promise<BrokerSubscription>;
  resume?: ResumeWindow;
}

/**
 * This node's profiles and their local sockets. The broker is subscribed on a profile's first local join
 * and unsubscribed on its last leave (or once a resume window ends), so broker load grows with profiles,
 * not sockets. One subscription per profile at a time: a join that follows a last leave waits for the
 * unsubscribe.
 */
export class ProfileHub {
  private readonly entries = new Map<ProfileId, ProfileEntry>();
  private readonly unsubscribing = new Map<ProfileId, Promise<void>>();
  private readonly maxMessageBytes: number;
  private readonly ackResumeMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly broker: NotificationBroker,
    private readonly log: Logger,
    private readonly metrics?: GatewayMetrics,
    options: ProfileHubOptions = {},
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? Number.POSITIVE_INFINITY;
    this.ackResumeMs = options.ackResumeMs ?? 0;
    this.clock = options.clock ?? systemClock;
  }

  /** Adds the subscriber; resolves once messages for the profile flow to this node. */
  async join(profile: ProfileId, subscriber: ProfileSubscriber): Promise<void> {
    let entry = this.entries.get(profile);
    if (!entry) {
      const subscribers = new Set<ProfileSubscriber>();
      const previous = this.unsubscribing.get(profile) ?? Promise.resolve();
      const created: ProfileEntry = {
        subscribers,
        live: previous.then(() => this.broker.subscribe(profile, (body) => this.deliver(profile, created, body))),
      };
      entry = created;
      this.entries.set(profile, entry);
      created.live.catch(() => {
        if (this.entries.get(profile) === created) this.entries.delete(profile);
      });
    }
    entry.subscribers.add(subscriber);
    // An ack-mode client is back: what was held for it goes back to the broker, which delivers it again now
    // that an ack-mode socket is joined.
    if (subscriber.acknowledges && entry.resume) this.endResume(profile, entry, () => 'redeliver');
    try {
      await entry.live;
    } catch (err) {
      entry.subscribers.delete(subscriber);
      throw err;
    }
  }

  /**
   * Removes the subscriber. `dropped`: an ack-mode socket closed rather than left, so the profile waits
   * `ackResumeMs` for an ack-mode client to come back before settling what it could not acknowledge.
   */
  leave(profile: ProfileId, subscriber: ProfileSubscriber, dropped = false): void {
    const entry = this.entries.get(profile);
    if (!entry || !entry.subscribers.delete(subscriber)) return;
    if (dropped && subscriber.acknowledges && this.ackResumeMs > 0) this.startResume(profile, entry);
    if (entry.subscribers.size > 0 || entry.resume) return;
    this.unsubscribe(profile, entry);
  }

  /** Profiles joined on this node with their local socket counts. */
  snapshot(): Array<{ profileId: ProfileId; sockets: number }> {
    return [...this.entries].map(([profileId, entry]) => ({ profileId, sockets: entry.subscribers.size }));
  }

  /** Ends every resume window (their messages go back to the broker) and waits for pending unsubscribes. */
  async drain(): Promise<void> {
    for (const [profile, entry] of [...this.entries]) if (entry.resume) this.endResume(profile, entry, () => 'redeliver');
    await Promise.all([...this.unsubscribing.values()]);
  }

  private unsubscribe(profile: ProfileId, entry: ProfileEntry): void {
    this.entries.delete(profile);
    const done = entry.live
      .then((subscription) => subscription.unsubscribe())
      .catch((err: unknown) => this.log.warn({ profileId: profile, err: errorText(err) }, 'broker unsubscribe failed'))
      .finally(() => {
        if (this.unsubscribing.get(profile) === done) this.unsubscribing.delete(profile);
      });
    this.unsubscribing.set(profile, done);
  }

  private startResume(profile: ProfileId, entry: ProfileEntry): void {
    entry.resume?.cancel();
    const window: ResumeWindow = entry.resume ?? { held: new Set(), cancel: () => {} };
    entry.resume = window;
    // At the end: what a plain socket wrote out counts as delivered; what nobody got goes back to the broker.
    window.cancel = this.clock.schedule(this.ackResumeMs, () => this.endResume(profile, entry, (d) => (d.written ? 'ack' : 'redeliver')));
  }

  private endResume(profile: ProfileId, entry: ProfileEntry, verdictOf: (delivery: PendingDelivery) => DeliveryVerdict): void {
    const window = entry.resume;
    if (!window) return;
    entry.resume = undefined;
    window.cancel();
    for (const delivery of window.held) delivery.release(verdictOf(delivery));
    if (entry.subscribers.size === 0 && this.entries.get(profile) === entry) this.unsubscribe(profile, entry);
  }

  /**
   * Hands a message to every local socket of the profile. Without ack-mode sockets the verdict is `ack` as
   * soon as one socket wrote it out (the fastest socket drives the broker's window; a slower one's buffer
   * grows until the transport closes it as a slow consumer) and `requeue` when every socket died first (the
   * broker keeps it for the next join). With ack-mode sockets, see PendingDelivery. Sockets found gone are
   * dropped here, so a dead socket cannot bounce messages back to the broker until its close event arrives.
   */
  private deliver(profile: ProfileId, entry: ProfileEntry, body: Buffer): DeliveryVerdict | Promise<DeliveryVerdict> {
    const { subscribers, resume } = entry;
    if (subscribers.size === 0 && !resume) return 'requeue';
    if (body.length > this.maxMessageBytes) {
      this.log.warn({ profileId: profile, bytes: body.length, max: this.maxMessageBytes }, 'message dead-lettered: larger than notify.maxMessageBytes');
      return 'reject';
    }
    const delivery = new PendingDelivery(performance.now(), this.metrics);
    let gone: ProfileSubscriber[] | undefined;
    for (const subscriber of subscribers) {
      if (!subscriber.deliver(body, subscriber.acknowledges ? delivery.onAcknowledged : delivery.onWritten)) (gone ??= []).push(subscriber);
      else if (subscriber.acknowledges) delivery.awaitingAcks += 1;
      else delivery.pendingWrites += 1;
    }
    if (gone) for (const subscriber of gone) this.leave(profile, subscriber);
    if (delivery.awaitingAcks === 0 && entry.resume) {
      const { held } = entry.resume;
      delivery.hold();
      held.add(delivery);
      return new Promise<DeliveryVerdict>((resolve) =>
        delivery.settle((verdict) => {
          held.delete(delivery);
          resolve(verdict);
        }),
      );
    }
    if (delivery.awaitingAcks === 0 && delivery.pendingWrites === 0) return 'requeue';
    return new Promise<DeliveryVerdict>((resolve) => delivery.settle(resolve));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
