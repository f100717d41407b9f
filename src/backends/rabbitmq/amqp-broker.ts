import { randomUUID } from 'node:crypto';
import type { BackendState } from '../../core/backend-state.js';
import { GatewayError } from '../../core/errors.js';
import type { ProfileId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { BrokerSubscription, DeliveryHandler, NotificationBroker } from '../../core/notification-broker.js';
import type { RetentionConfig } from '../../config/schema.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { AmqpConnection } from './amqp-connection.js';
import { confirmPublish, errorText, type Link } from './amqp-link.js';
import { consumeDeadLetterLog } from './dead-letter-log.js';
import { declareFixedTopology, Mailboxes } from './mailboxes.js';
import { ProfileSubscription, type SubscriptionContext } from './profile-subscription.js';
import { RelayIds } from './relay-protocol.js';
import { RelayQueues } from './relay-queues.js';

export interface AmqpBrokerOptions {
  url: string;
  nodeId: string;
  queuePrefix: string;
  deadLetterQueue: string;
  retention: RetentionConfig;
  nodeQueueExpiresMs: number;
  prefetch: number;
  log: Logger;
  metrics?: GatewayMetrics;
  /** How long start() waits for the first connection before the gateway serves with the broker down. */
  startTimeoutMs?: number;
  /** How often, at most, a relaying node asks for its mailbox's consumer count (default 5 s; tests use 0). */
  peerCheckIntervalMs?: number;
}

const peerCheckIntervalMs = 5_000;

/**
 * NotificationBroker on RabbitMQ, correct with several gateway nodes sharing one broker. How and why it
 * works (single active consumer per mailbox, direct and relayed delivery, hand-over, crashes): see
 * docs/rabbitmq-design.md. This class only wires the parts together:
 * - AmqpConnection: the connection, its recovery and the channel set (Link) of each connection;
 * - Mailboxes and topology.ts: names, arguments, declares, consumer counts;
 * - ProfileSubscription: one per joined profile, its mailbox consumer and relay queue;
 * - relay-protocol.ts: the headers and markers nodes exchange; RelayQueues: relay queues on the broker;
 * - dead-letter-log.ts: the consumer that logs dead-lettered messages.
 */
export class AmqpBroker implements NotificationBroker {
  readonly name = 'broker';
  readonly kind = 'rabbitmq';
  private readonly connection: AmqpConnection;
  private readonly mailboxes: Mailboxes;
  private readonly relayQueues: RelayQueues;
  private readonly context: SubscriptionContext;
  private readonly subscriptions = new Map<ProfileId, ProfileSubscription>();
  /** Whether this process has already dealt with the relay queue an earlier version left (once per process). */
  private discardedEarlierNodeQueue = false;

  constructor(private readonly options: AmqpBrokerOptions) {
    const { log, metrics, nodeId } = options;
    this.mailboxes = new Mailboxes(options);
    const ids = new RelayIds(nodeId, randomUUID().slice(0, 8));
    this.relayQueues = new RelayQueues({ nodeId, nodeQueueExpiresMs: options.nodeQueueExpiresMs, mailboxes: this.mailboxes, ids, log });
    this.connection = new AmqpConnection(options, {
      prepare: (link) => this.prepare(link),
      serve: (link) => this.serve(link),
      dropped: () => {
        for (const subscription of this.subscriptions.values()) subscription.linkDropped();
      },
    });
    this.context = {
      nodeId,
      log,
      metrics,
      ids,
      mailboxes: this.mailboxes,
      relayQueues: this.relayQueues,
      peerCheckIntervalMs: options.peerCheckIntervalMs ?? peerCheckIntervalMs,
      nodeQueueExpiresMs: options.nodeQueueExpiresMs,
      // Half the mailbox window: the other half keeps flowing to the other holders while this node's
      // sockets lag (through this node's relay queue, which has a window of its own).
      localBacklogLimit: Math.max(1, Math.floor(options.prefetch / 2)),
      currentLink: () => this.connection.currentLink(),
      relink: (link) => this.connection.relink(link),
    };
  }

  state(): BackendState {
    return this.connection.state();
  }

  onStateChange(listener: (state: BackendState) => void): () => void {
    return this.connection.onStateChange(listener);
  }

  start(): Promise<void> {
    return this.connection.start();
  }

  async subscribe(profile: ProfileId, onDelivery: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.subscriptions.has(profile)) throw new Error(`profile ${profile} is already subscribed on this node`);
    const link = this.requireLink();
    const subscription = new ProfileSubscription(this.context, profile, onDelivery);
    this.subscriptions.set(profile, subscription);
    try {
      await subscription.attach(link);
    } catch (err) {
      this.forget(subscription);
      throw asUnavailable(err);
    }
    return {
      unsubscribe: async () => {
        if (this.subscriptions.get(profile) !== subscription) return;
        this.forget(subscription);
        await subscription.unsubscribe();
      },
    };
  }

  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    const link = this.requireLink();
    const mailbox = this.mailboxes.name(profile);
    try {
      await this.mailboxes.ensure(link, mailbox);
      await confirmPublish(link.publisher, '', mailbox, body, { persistent: true, contentType: 'application/json' });
    } catch (err) {
      throw asUnavailable(err);
    }
  }

  /** Cancels every mailbox consumer (another node takes over), gives back what this node holds, disconnects. */
  async close(): Promise<void> {
    this.connection.beginClose();
    const subscriptions = [...this.subscriptions.values()];
    for (const subscription of subscriptions) subscription.stopReattaching();
    const link = this.connection.currentLink();
    const wasAlive = link?.alive === true;
    // Still subscribed while their consumers are cancelled: what arrives meanwhile is delivered as usual.
    if (link && wasAlive) await Promise.allSettled(subscriptions.map((subscription) => subscription.cancelMailboxConsumer(link)));
    this.subscriptions.clear();
    for (const subscription of subscriptions) subscription.end();
    if (link && wasAlive) {
      // The sockets are closed before the broker (so their profiles were normally unsubscribed already):
      // what is left in this node's relay queues goes back to the mailboxes, and the queues with it.
      await this.relayQueues
        .emptyOnClose(link, subscriptions.map((subscription) => subscription.relayQueue))
        .catch((err: unknown) => this.options.log.warn({ reason: errorText(err) }, 'could not hand back the relay queues'));
    }
    // Acks still waiting for their batch go out now: otherwise their messages would be delivered again.
    for (const lane of [...(link?.mailboxLanes ?? []), ...(link?.relayQueueLanes ?? [])]) lane.acks.flush();
    await this.connection.close();
  }

  private forget(subscription: ProfileSubscription): void {
    if (this.subscriptions.get(subscription.profile) === subscription) this.subscriptions.delete(subscription.profile);
    subscription.end();
  }

  private async prepare(link: Link): Promise<void> {
    await declareFixedTopology(link.publisher, this.options.deadLetterQueue);
    if (!this.discardedEarlierNodeQueue) {
      await this.relayQueues.discardEarlierNodeQueue(link);
      this.discardedEarlierNodeQueue = true;
    }
  }

  /** Re-attaches every joined profile on a new link (after the dead-letter log consumer). */
  private async serve(link: Link): Promise<void> {
    const { log, deadLetterQueue, metrics } = this.options;
    this.mailboxes.forgetAll();
    await consumeDeadLetterLog(link, { deadLetterQueue, mailboxes: this.mailboxes, log, metrics });
    for (const [profile, subscription] of this.subscriptions) {
      try {
        await subscription.attach(link);
      } catch (err) {
        // One profile's mailbox refusing (e.g. declared with other arguments) must not keep the rest down.
        log.error({ profileId: profile, reason: errorText(err) }, 'could not re-attach a joined profile after reconnecting');
        if (!link.alive) return;
      }
    }
  }

  private requireLink(): Link {
    const link = this.connection.liveLink();
    if (!link) throw new GatewayError('unavailable', 'The message broker is unavailable; try again.');
    return link;
  }
}

function asUnavailable(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('unavailable', 'The message broker is unavailable; try again.', { cause: err });
}
