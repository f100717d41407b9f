import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, RecoveringChannelModel } from 'amqplib';
import type { BackendState } from '../../core/backend-state.js';
import { GatewayError } from '../../core/errors.js';
import type { ProfileId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { BrokerSubscription, DeliveryHandler, DeliveryVerdict, NotificationBroker } from '../../core/notification-broker.js';
import type { RetentionConfig } from '../../config/schema.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { checkNotification } from '../../protocol/notify.js';
import {
  deadLetterExchangeName,
  deadLetterInspectionLimit,
  deadLetterLogLimit,
  deadLetterLogQueueName,
  mailboxQueueArguments,
  mailboxQueueName,
  nodeQueueArguments,
  nodeQueueName,
  relayExchange,
} from './topology.js';

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
}

/** The channels of one live connection; replaced as a whole after a reconnect. */
interface Link {
  readonly model: ChannelModel;
  /** Confirm channel: relays, re-publishes to mailboxes, publish(). */
  readonly publisher: ConfirmChannel;
  /** Consumes the mailboxes of the profiles joined here (single active consumer per mailbox). */
  readonly relay: Channel;
  /** Consumes this node's relay queue and the dead-letter log queue. */
  readonly node: Channel;
  /** Declares mailboxes; a refused declare closes only this channel. Recreated on demand. */
  declarer: Promise<Channel> | undefined;
  /** Relay copies RabbitMQ returned as unroutable, by relay id, until their confirm arrives. */
  readonly returned: Set<string>;
  /** Consumer tags on `node` (relay queue, dead-letter log). */
  readonly nodeConsumers: string[];
  alive: boolean;
}

interface ProfileState {
  handler: DeliveryHandler;
  /** The mailbox consumer on the current link, once attached. */
  consumerTag: string | undefined;
  link: Link | undefined;
}

const relayHeader = 'x-switchboard-relay';
const mailboxDeclareCacheMs = 60_000;

/**
 * NotificationBroker on RabbitMQ, correct with several gateway nodes sharing one broker
 * (spec: notify-protocol.md, "Delivery guarantees"; topology in ./topology.ts).
 *
 * Why this shape:
 * - The backend's contract is fixed: persistent messages to the durable queue `message_to_user.<profile>`.
 *   If every node holding a socket of the profile consumed that queue, RabbitMQ would split the messages
 *   between them. So the mailbox has a single active consumer: of the nodes subscribed to the profile,
 *   exactly one receives its messages, in order, and relays each to the `switchboard.relay` exchange, whose
 *   bindings (one per node that holds the profile) copy it to every such node's own queue. The mailbox
 *   message is acknowledged only after RabbitMQ confirmed the relay copies (mandatory: an unroutable
 *   copy is put back), so a message is never acknowledged before it was handed on to the nodes.
 * - A node's relay queue is durable with a stable name, not exclusive: when the connection drops,
 *   copies already relayed (and acknowledged in the mailbox) wait there, and the node resumes them after
 *   reconnecting. A copy is acknowledged after it was written to the local sockets; a copy this node can
 *   no longer deliver (the profile's last local socket left) goes back to the profile's mailbox, so it is
 *   not lost (it may then reach another node twice: at least once). A crashed node's queue expires after
 *   `nodeQueueExpiresMs`; give nodes a stable NODE_ID to resume it after a restart.
 * - Relay copies are routed with the mailbox queue name as routing key, so "back to the mailbox" is a
 *   publish to the default exchange with that same key.
 * - Ordering: one mailbox, one active consumer, one publishing channel, one relay queue per node,
 *   consumed in order: per-profile publish order holds in steady state. A relay that fails is requeued
 *   in the mailbox, which can reorder it behind later messages (at-least-once over order on failure).
 * - Retention: mailbox arguments (max length with drop-head, TTL, expiry) and a dead-letter exchange.
 *   Dropped, expired and invalid messages land in `switchboard.dead_letter` for a person to inspect, and a
 *   copy in `switchboard.dead_letter.log`, which the nodes consume to log each one.
 * - Connection loss: amqplib's recovery reconnects with exponential backoff and jitter; each new
 *   connection redeclares the topology and re-attaches every joined profile. Meanwhile state() is 'down'
 *   (joins answer 503, /health reports it) and unacknowledged messages return to their queues.
 */
export class AmqpBroker implements NotificationBroker {
  readonly name = 'broker';
  readonly kind = 'rabbitmq';
  private current: BackendState = 'connecting';
  private readonly listeners = new Set<(state: BackendState) => void>();
  private connection: RecoveringChannelModel | undefined;
  private link: Link | undefined;
  private readonly profiles = new Map<ProfileId, ProfileState>();
  private readonly declaredAt = new Map<string, number>();
  private readonly nodeQueue: string;
  private relaySeq = 0;
  private closing = false;
  private setupRun: Promise<void> = Promise.resolve();
  private reconnects = 0;

  constructor(private readonly options: AmqpBrokerOptions) {
    this.nodeQueue = nodeQueueName(options.nodeId);
  }

  state(): BackendState {
    return this.current;
  }

  onStateChange(listener: (state: BackendState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const { log } = this.options;
    const connection = await amqp.connect(this.options.url, {
      clientProperties: { connection_name: `switchboard ${this.options.nodeId}` },
      recovery: { initialDelay: 200, maxDelay: 10_000, factor: 2, jitter: 0.3, waitForConnect: false },
    });
    this.connection = connection;
    const firstUp = new Promise<void>((resolve) => {
      const onState = (state: BackendState) => {
        if (state === 'up') {
          resolve();
          this.listeners.delete(onState);
        }
      };
      this.listeners.add(onState);
    });
    connection.on('connect', (model: ChannelModel) => {
      if (this.reconnects++ > 0) this.options.metrics?.backendReconnects.inc({ backend: 'broker' });
      log.info({ attempt: this.reconnects }, 'broker connected');
      this.setupRun = this.setupRun.then(() => this.setup(model));
    });
    connection.on('disconnect', (err: Error) => {
      this.dropLink();
      if (!this.closing) log.warn({ reason: err?.message }, 'broker connection lost; reconnecting');
    });
    connection.on('reconnect-scheduled', (info: { attempt: number; delay: number }) =>
      log.info({ attempt: info.attempt, delayMs: Math.round(info.delay) }, 'broker reconnect scheduled'),
    );
    connection.on('connect-failed', (err: Error) => {
      this.setState('down');
      log.warn({ reason: err.message }, 'broker connection failed');
    });
    connection.on('error', (err: Error) => log.warn({ reason: err.message }, 'broker connection error'));
    connection.on('blocked', (reason: string) => log.warn({ reason }, 'broker blocked publishing'));
    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([firstUp, timedOut]);
    clearTimeout(timer);
    if (this.current !== 'up') log.error({ timeoutMs }, 'broker not reachable at start; serving with the broker down');
  }

  async subscribe(profile: ProfileId, onDelivery: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.profiles.has(profile)) throw new Error(`profile ${profile} is already subscribed on this node`);
    const link = this.requireLink();
    const state: ProfileState = { handler: onDelivery, consumerTag: undefined, link: undefined };
    this.profiles.set(profile, state);
    try {
      await this.attach(link, profile, state);
    } catch (err) {
      this.profiles.delete(profile);
      throw asUnavailable(err);
    }
    return { unsubscribe: () => this.unsubscribe(profile, state) };
  }

  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    const link = this.requireLink();
    const queue = mailboxQueueName(this.options.queuePrefix, profile);
    try {
      await this.declareMailbox(link, queue);
      await confirmPublish(link.publisher, '', queue, body, { persistent: true, contentType: 'application/json' });
    } catch (err) {
      throw asUnavailable(err);
    }
  }

  /** Cancels every mailbox consumer (another node takes over), gives back what this node holds, disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    const link = this.link;
    if (link?.alive) {
      await Promise.allSettled([...this.profiles.values()].map((state) => this.detachConsumer(link, state)));
      // The sockets are closed before the broker, so what is left in this node's queue goes back to the
      // mailboxes, and the queue with it.
      this.profiles.clear();
      await this.drainNodeQueue(link).catch((err: unknown) => this.options.log.warn({ reason: errorText(err) }, 'could not hand back the relay queue'));
    }
    this.profiles.clear();
    await this.connection?.close().catch(() => {});
    this.setState('down');
  }

  private async unsubscribe(profile: ProfileId, state: ProfileState): Promise<void> {
    if (this.profiles.get(profile) !== state) return;
    this.profiles.delete(profile);
    const link = state.link;
    if (!link?.alive) return;
    // Stop being a mailbox consumer first, then stop the copies: in between, copies still arrive and, with
    // no local socket, go back to the mailbox.
    await this.detachConsumer(link, state);
    await link.publisher.unbindQueue(this.nodeQueue, relayExchange, mailboxQueueName(this.options.queuePrefix, profile));
  }

  private async detachConsumer(link: Link, state: ProfileState): Promise<void> {
    const tag = state.consumerTag;
    state.consumerTag = undefined;
    if (tag && link.alive) await link.relay.cancel(tag);
  }

  /** Binds this node's queue for the profile, then becomes a (single active) consumer of its mailbox. */
  private async attach(link: Link, profile: ProfileId, state: ProfileState): Promise<void> {
    const queue = mailboxQueueName(this.options.queuePrefix, profile);
    await this.declareMailbox(link, queue, true);
    await link.publisher.bindQueue(this.nodeQueue, relayExchange, queue);
    const { consumerTag } = await link.relay.consume(queue, (msg) => this.onMailboxMessage(link, profile, state, msg));
    if (this.profiles.get(profile) !== state || !link.alive) {
      // Unsubscribed (or disconnected) while attaching.
      if (link.alive) await link.relay.cancel(consumerTag).catch(() => {});
      return;
    }
    state.consumerTag = consumerTag;
    state.link = link;
  }

  private onMailboxMessage(link: Link, profile: ProfileId, state: ProfileState, msg: ConsumeMessage | null): void {
    const { log, metrics } = this.options;
    if (msg === null) {
      // RabbitMQ cancelled the consumer: the mailbox was deleted (by an operator). Re-attach.
      log.warn({ profileId: profile }, 'mailbox consumer cancelled by the broker; re-attaching');
      state.consumerTag = undefined;
      if (this.profiles.get(profile) === state && link.alive) {
        this.declaredAt.delete(mailboxQueueName(this.options.queuePrefix, profile));
        this.attach(link, profile, state).catch((err: unknown) => log.error({ profileId: profile, reason: errorText(err) }, 're-attach failed'));
      }
      return;
    }
    const check = checkNotification(msg.content);
    if (!check.ok) {
      safely(() => link.relay.nack(msg, false, false));
      metrics?.messagesDeadLettered.inc();
      log.warn({ profileId: profile, reason: check.reason, bytes: msg.content.length }, 'message dead-lettered: not a valid notification');
      return;
    }
    const relayId = `${this.options.nodeId}:${(this.relaySeq++).toString(36)}`;
    const headers = { ...(msg.properties.headers ?? {}), [relayHeader]: relayId };
    link.publisher.publish(
      relayExchange,
      msg.fields.routingKey || mailboxQueueName(this.options.queuePrefix, profile),
      msg.content,
      { persistent: msg.properties.deliveryMode === 2, mandatory: true, headers, contentType: msg.properties.contentType },
      (err: unknown) => {
        const returned = link.returned.delete(relayId);
        if (!link.alive) return; // the mailbox message returns to the queue with the connection
        if (err || returned) {
          if (returned) log.warn({ profileId: profile }, 'relay copy unroutable; requeued in the mailbox');
          safely(() => link.relay.nack(msg, false, true));
        } else {
          safely(() => link.relay.ack(msg));
        }
      },
    );
  }

  private onRelayCopy(link: Link, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.options.log.error('relay queue consumer cancelled by the broker; reconnecting the link');
      this.relink(link);
      return;
    }
    this.options.metrics?.messagesReceived.inc();
    const queue = msg.fields.routingKey;
    const profile = queue.slice(this.options.queuePrefix.length) as ProfileId;
    const state = this.profiles.get(profile);
    let verdict: DeliveryVerdict | Promise<DeliveryVerdict> = 'requeue';
    if (state) {
      try {
        verdict = state.handler(msg.content);
      } catch (err) {
        this.options.log.error({ profileId: profile, reason: errorText(err) }, 'delivery handler failed');
        verdict = 'requeue';
      }
    }
    if (typeof verdict === 'string') this.settleCopy(link, msg, verdict, state === undefined);
    else verdict.then((v) => this.settleCopy(link, msg, v, false), () => this.settleCopy(link, msg, 'requeue', false));
  }

  private settleCopy(link: Link, msg: ConsumeMessage, verdict: DeliveryVerdict, notJoinedHere: boolean): void {
    if (!link.alive) return; // unacknowledged: it stays in this node's durable queue
    if (verdict === 'ack') {
      safely(() => link.node.ack(msg));
      return;
    }
    if (verdict === 'reject') {
      this.options.metrics?.messagesDeadLettered.inc();
      safely(() => link.node.nack(msg, false, false));
      return;
    }
    const queue = msg.fields.routingKey;
    if (notJoinedHere) {
      // A binding left over (e.g. from before a restart with the same NODE_ID): drop it, or the copy would
      // come straight back here from the mailbox.
      link.publisher.unbindQueue(this.nodeQueue, relayExchange, queue).catch(() => {});
    }
    this.returnToMailbox(link, msg).then(
      () => safely(() => link.node.ack(msg)),
      () => safely(() => link.node.nack(msg, false, true)),
    );
  }

  private async returnToMailbox(link: Link, msg: Message): Promise<void> {
    const queue = msg.fields.routingKey;
    await this.declareMailbox(link, queue);
    const headers = { ...(msg.properties.headers ?? {}) };
    delete headers[relayHeader];
    await confirmPublish(link.publisher, '', queue, msg.content, {
      persistent: msg.properties.deliveryMode === 2,
      headers,
      contentType: msg.properties.contentType,
    });
  }

  /** Logs each dead-lettered message once across the fleet (the log queue's consumers compete). */
  private onDeadLetterLog(link: Link, msg: ConsumeMessage | null): void {
    if (msg === null) return;
    const deaths = (msg.properties.headers?.['x-death'] as Array<{ reason?: string; queue?: string }> | undefined) ?? [];
    const first = deaths[deaths.length - 1] ?? deaths[0];
    const reason = String(first?.reason ?? 'unknown');
    const queue = String(first?.queue ?? msg.properties.headers?.['x-first-death-queue'] ?? 'unknown');
    const profileId = queue.startsWith(this.options.queuePrefix) ? queue.slice(this.options.queuePrefix.length) : undefined;
    if (reason === 'maxlen' || reason === 'expired') {
      this.options.metrics?.messagesDroppedByRetention.inc({ reason });
      this.options.log.warn({ profileId, queue, reason, deadLetterQueue: this.options.deadLetterQueue }, 'retention policy dropped a waiting message');
    } else {
      this.options.log.warn({ profileId, queue, reason, deadLetterQueue: this.options.deadLetterQueue }, 'message dead-lettered');
    }
    safely(() => link.node.ack(msg));
  }

  /** Builds the channels and topology on a fresh connection and re-attaches every joined profile. */
  private async setup(model: ChannelModel): Promise<void> {
    const { log, prefetch, deadLetterQueue } = this.options;
    try {
      const publisher = await model.createConfirmChannel();
      const relay = await model.createChannel();
      const node = await model.createChannel();
      const link: Link = { model, publisher, relay, node, declarer: undefined, returned: new Set(), nodeConsumers: [], alive: true };
      for (const [name, channel] of [['publisher', publisher], ['relay', relay], ['node', node]] as const) {
        channel.on('error', (err: Error) => log.error({ channel: name, reason: err.message }, 'broker channel error'));
        channel.on('close', () => {
          if (link.alive && !this.closing) {
            log.error({ channel: name }, 'broker channel closed unexpectedly; rebuilding');
            this.relink(link);
          }
        });
      }
      publisher.on('return', (msg: Message) => {
        const id = msg.properties.headers?.[relayHeader];
        if (typeof id === 'string') link.returned.add(id);
      });

      await publisher.assertExchange(relayExchange, 'direct', { durable: true });
      const deadLetterExchange = deadLetterExchangeName(deadLetterQueue);
      await publisher.assertExchange(deadLetterExchange, 'fanout', { durable: true });
      await publisher.assertQueue(deadLetterQueue, {
        durable: true,
        arguments: { 'x-max-length': deadLetterInspectionLimit, 'x-overflow': 'drop-head' },
      });
      await publisher.bindQueue(deadLetterQueue, deadLetterExchange, '');
      const logQueue = deadLetterLogQueueName(deadLetterQueue);
      await publisher.assertQueue(logQueue, { durable: true, arguments: { 'x-max-length': deadLetterLogLimit, 'x-overflow': 'drop-head' } });
      await publisher.bindQueue(logQueue, deadLetterExchange, '');
      await publisher.assertQueue(this.nodeQueue, { durable: true, arguments: nodeQueueArguments(this.options.nodeQueueExpiresMs) });

      await relay.prefetch(prefetch);
      await node.prefetch(prefetch);
      this.link = link;
      this.declaredAt.clear();
      const relayConsumer = await node.consume(this.nodeQueue, (msg) => this.onRelayCopy(link, msg), { exclusive: true });
      const logConsumer = await node.consume(logQueue, (msg) => this.onDeadLetterLog(link, msg));
      link.nodeConsumers.push(relayConsumer.consumerTag, logConsumer.consumerTag);
      for (const [profile, state] of this.profiles) {
        state.consumerTag = undefined;
        try {
          await this.attach(link, profile, state);
        } catch (err) {
          // One profile's mailbox refusing (e.g. declared with other arguments) must not keep the rest down.
          log.error({ profileId: profile, reason: errorText(err) }, 'could not re-attach a joined profile after reconnecting');
          if (!link.alive) return;
        }
      }
      if (link.alive) this.setState('up');
    } catch (err) {
      log.error({ reason: errorText(err) }, 'broker setup failed; closing the connection to retry');
      this.dropLink();
      // Closing the underlying socket makes the recovery wrapper reconnect and run setup again.
      (model as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }
  }

  /** A channel died on a live connection: rebuild the whole link on the same connection. */
  private relink(link: Link): void {
    if (this.link !== link) return;
    this.dropLink();
    this.setupRun = this.setupRun.then(() => this.setup(link.model));
  }

  private dropLink(): void {
    if (this.link) this.link.alive = false;
    this.link = undefined;
    for (const state of this.profiles.values()) {
      state.consumerTag = undefined;
      state.link = undefined;
    }
    if (!this.closing) this.setState('down');
  }

  private async drainNodeQueue(link: Link): Promise<void> {
    // Stop the consumers and put what they hold back in the queue, then give every copy still queued
    // for this node back to its mailbox, and delete the queue.
    link.alive = false;
    for (const tag of link.nodeConsumers) await link.node.cancel(tag);
    link.node.nackAll(true);
    for (let i = 0; i < 100_000; i += 1) {
      const msg = await link.node.get(this.nodeQueue, { noAck: false });
      if (msg === false) break;
      await this.returnToMailbox(link, msg);
      link.node.ack(msg);
    }
    await link.publisher.deleteQueue(this.nodeQueue, { ifEmpty: true });
  }

  private async declareMailbox(link: Link, queue: string, force = false): Promise<void> {
    const last = this.declaredAt.get(queue);
    if (!force && last !== undefined && Date.now() - last < mailboxDeclareCacheMs) return;
    if (!link.declarer) {
      link.declarer = link.model.createChannel().then((channel) => {
        channel.on('error', () => {});
        channel.on('close', () => {
          link.declarer = undefined;
        });
        return channel;
      });
    }
    const channel = await link.declarer;
    try {
      await channel.assertQueue(queue, { durable: true, arguments: mailboxQueueArguments(this.options.retention, this.options.deadLetterQueue) });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 406) {
        this.options.log.error(
          { queue, reason: errorText(err) },
          'mailbox queue exists with other arguments; declare it as the gateway does (see README "RabbitMQ topology")',
        );
      }
      throw err;
    }
    this.declaredAt.set(queue, Date.now());
  }

  private requireLink(): Link {
    const link = this.link;
    if (!link?.alive || this.current !== 'up') throw new GatewayError('unavailable', 'The message broker is unavailable; try again.');
    return link;
  }

  private setState(state: BackendState): void {
    if (this.current === state) return;
    this.current = state;
    this.options.metrics?.backendState.set({ backend: 'broker' }, state === 'up' ? 1 : 0);
    this.options.log.info({ state }, 'broker state');
    for (const listener of [...this.listeners]) listener(state);
  }
}

function confirmPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: amqp.Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(exchange, routingKey, body, options, (err: unknown) => (err ? reject(err) : resolve()));
  });
}

function asUnavailable(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : new GatewayError('unavailable', 'The message broker is unavailable; try again.', { cause: err });
}

/** Acks and nacks on a channel that just closed throw; the message then returns to its queue anyway. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* channel closed: RabbitMQ requeues what was not acknowledged */
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
