import { randomUUID } from 'node:crypto';
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
import { AckBatcher } from './ack-batcher.js';
import { DeliveryMode } from './delivery-mode.js';
import {
  deadLetterExchangeName,
  deadLetterInspectionLimit,
  deadLetterLogLimit,
  deadLetterLogQueueName,
  expiredRelayCopy,
  mailboxQueueArguments,
  mailboxQueueName,
  nodeQueueName,
  relayExchange,
  relayQueueArguments,
  relayQueueName,
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
  /** How often, at most, a relaying node asks for its mailbox's consumer count (default 5 s; tests use 0). */
  peerCheckIntervalMs?: number;
}

/** The channels of one live connection; replaced as a whole after a reconnect. */
interface Link {
  readonly model: ChannelModel;
  /** Confirm channel: relays, re-publishes to mailboxes, publish(). */
  readonly publisher: ConfirmChannel;
  /** Consumes the mailboxes of the profiles joined here (single active consumer per mailbox). */
  readonly relay: Channel;
  /** Settles the mailbox deliveries on `relay`. */
  readonly relayAcks: AckBatcher;
  /** Consumes this node's relay queues (one consumer each, so the prefetch is per profile) and the dead-letter log. */
  readonly node: Channel;
  /** Settles the deliveries of the consumers on `node`. */
  readonly nodeAcks: AckBatcher;
  /**
   * Declares mailboxes and relay queues, binds, unbinds, deletes and hands back relay queues; a refused
   * operation closes only this channel. Recreated on demand.
   */
  declarer: Promise<Channel> | undefined;
  /** Relay copies RabbitMQ returned as unroutable, by relay id, until their confirm arrives. */
  readonly returned: Set<string>;
  /** Consumer tags on `node` other than relay queues' (the dead-letter log). */
  readonly nodeConsumers: string[];
  alive: boolean;
}

interface ProfileState {
  handler: DeliveryHandler;
  /** The mailbox consumer on the current link, once attached. */
  consumerTag: string | undefined;
  link: Link | undefined;
  /** Direct or relayed delivery while this node is the mailbox's active consumer. */
  mode: DeliveryMode;
  /** This node's relay queue for the profile (topology.ts, relayQueueName). */
  readonly relayQueue: string;
  /** The relay queue exists (declared and not deleted since): it is consumed again on every new link. */
  relayQueueDeclared: boolean;
  /** Declaring, binding and consuming the relay queue on one link; cleared when that link drops. */
  relayConsumer: RelayConsumer | undefined;
  /** This node put a hello in the mailbox on its current attach, so the active node may relay to it. */
  saidHello: boolean;
  /** Prefix of the relay ids of copies this node relays during its current attach (unique per process and attach). */
  relayEpoch: string;
  /** Relay queue setups that failed in a row while relaying (see stepAside); reset by one that works. */
  relaySetupFailures: number;
  /** Attaches again after stepAside; the mailbox consumer is cancelled meanwhile. */
  reattachTimer: NodeJS.Timeout | undefined;
}

interface RelayConsumer {
  readonly link: Link;
  ready: Promise<void>;
  consumerTag: string | undefined;
  /** Copies may be relayed: the queue is declared, bound and consumed on `link`. */
  live: boolean;
}

const relayHeader = 'x-switchboard-relay';
/** Control messages a node puts in a mailbox; never forwarded. Value: 'hello' | 'bye'. */
const markerHeader = 'x-switchboard-marker';
const markerNodeHeader = 'x-switchboard-node';
/** On a relay copy: the relaying node knew other nodes held the profile, so each of them got its own copy. */
const sharedHeader = 'x-switchboard-shared';
const peerCheckIntervalMs = 5_000;
const mailboxDeclareCacheMs = 60_000;
const relaySetupRetryMs = 1_000;
const relaySetupRetryMaxMs = 30_000;
/** Copies a hand-back takes at a time (see drainRelayQueue). */
const handBackPrefetch = 256;

/**
 * NotificationBroker on RabbitMQ, correct with several gateway nodes sharing one broker
 * (spec: notify-protocol.md, "Delivery guarantees"; topology in ./topology.ts).
 *
 * Why this shape:
 * - The backend's contract is fixed: persistent messages to the durable queue `message_to_user.<profile>`.
 *   If every node holding a socket of the profile consumed that queue, RabbitMQ would split the messages
 *   between them. So the mailbox has a single active consumer: of the nodes subscribed to the profile,
 *   exactly one receives its messages, in order.
 * - Direct mode (the common case, one node holds the profile): the active node writes each message to its
 *   local sockets and acknowledges it once written. No extra broker work compared with a plain consumer,
 *   and no relay queue: a node that finds itself the mailbox's only consumer right after consuming it
 *   declares nothing else and sends no marker.
 * - Relay mode (several nodes hold it): the active node publishes each message to `switchboard.relay`
 *   (mandatory, confirmed), whose bindings copy it into the relay queue of every node holding the profile,
 *   its own included, and acknowledges the mailbox message once RabbitMQ confirmed the copies. Each node
 *   writes its copy to its sockets, then acknowledges it.
 * - One relay queue per (node, profile), `switchboard.relay.<nodeId>/<profile>` (a digest when too long),
 *   each with its own consumer: RabbitMQ's prefetch is per consumer, so a socket that stops reading holds
 *   at most `prefetch` copies of its own profile and stalls nothing else, as in direct mode. A shared queue
 *   per node would let it stall every relayed profile of the node. The active node relays to itself too
 *   (rather than writing locally and acknowledging after the write) so that its stalled socket cannot
 *   stall the profile's other nodes either, and so that a hand-over keeps order (below).
 * - Switching: a node that joins a profile consumes its mailbox (single active consumer) and asks the
 *   consumer count. Not alone, it declares, binds and consumes its relay queue, then puts a `hello` marker
 *   into the mailbox. The active node meets the marker in publish order and relays from that message on
 *   (declaring its own relay queue first if it has none: later messages wait for it, in order), so the
 *   newcomer gets everything published after its join. A node that leaves puts a `bye` marker; the active
 *   node then asks RabbitMQ for the mailbox's consumer count (waiting consumers included) and, alone again,
 *   goes back to direct mode once its own relay copies have come back (so nothing is overtaken). The count
 *   is also checked every few seconds while relaying; a node that said hello is forgotten without a `bye`
 *   only after the counts have missed it for `nodeQueueExpiresMs` (see DeliveryMode): a node whose broker
 *   connection was cut is missing from the count too, and its relay queue keeps its copies meanwhile.
 * - A node that must relay but cannot set up its relay queue (e.g. permissions refuse
 *   `switchboard.relay.*`) cancels its mailbox consumer, so another holder becomes the active one, and
 *   attaches again after a growing delay (stepAside) rather than retrying at every redelivery.
 * - Hand-over: when the active node leaves, a waiting node becomes active with copies possibly still in
 *   its relay queue. It attached knowing it was not alone, so it relays: its own copies queue up behind
 *   those, and it goes direct only once a count says alone and its own copies have come back.
 * - Relay queues are durable with stable names, not exclusive: when the connection drops, copies already
 *   relayed (and acknowledged in the mailbox) wait there and the node resumes them after reconnecting (a
 *   restarted process with the same NODE_ID resumes a profile's queue when it joins that profile with
 *   company). The active node keeps relaying to it while it is away (up to `nodeQueueExpiresMs`), so
 *   its sockets, which stay joined, get what was published meanwhile once it is back. The limit: a copy
 *   another node relayed that waited more than nine tenths of `nodeQueueExpiresMs` expires and is dropped
 *   (below); copies this node relayed itself are delivered again in that case. A copy a node can no
 *   longer deliver (its last local socket of the profile left) goes back to the mailbox only if this node relayed it while it knew no other holder (it may have been the only
 *   one); it is dropped if another node relayed it (that node holds the profile and got its own copy) or
 *   if this node relayed it after a hello it had no bye or count of one for since (a header on the copy
 *   says so): every such holder got its own copy, and one sent back would reach it twice, after newer
 *   messages. Leaving a profile gives back what its relay queue holds (on a channel of its own, through
 *   a consumer, until an end marker put at the queue's tail comes back) and deletes it; a queue kept while
 *   the profile went back to direct mode stays until the node leaves the profile. Relay queues have no
 *   length cap: RabbitMQ's drop-head would dead-letter the oldest copies into the mailbox (delivering them
 *   again to every holder, and into the full queue again), and reject-publish would let one stalled node
 *   stall the profile for all; a queue holds at most what arrives during its copies' `x-message-ttl`.
 * - Crashes: an abandoned relay queue expires after `nodeQueueExpiresMs`; before that its copies reach
 *   their `x-message-ttl` (nine tenths of it) and are dead-lettered back to the mailbox. The active node
 *   then sends on those that expired in the relaying node's own queue (at least once: other holders may
 *   get them twice) and drops the others (the rule above; also stops them bouncing through the abandoned
 *   queue, still bound until it expires). Limit: a copy that waits that long behind a live but stalled
 *   socket takes the same way, so keep `nodeQueueExpiresMs` well above two heartbeat intervals.
 * - Relay copies are routed with the mailbox queue name as routing key, so "back to the mailbox" is a
 *   publish to the default exchange (or a dead-letter) with that same key.
 * - Ordering: one mailbox, one active consumer, one publishing channel, one relay queue per node and
 *   profile consumed in order: per-profile publish order holds in steady state. A relay that fails is
 *   requeued in the mailbox, which can reorder it behind later messages (at least once over order, on
 *   failure only).
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
  private attachSeq = 0;
  /** Tells this process's relay copies from those an earlier run with the same NODE_ID left queued. */
  private readonly runId = randomUUID().slice(0, 8);
  private closing = false;
  private setupRun: Promise<void> = Promise.resolve();
  private reconnects = 0;
  /** Whether this process has already dealt with a relay queue left by an earlier run. */
  private resumedNodeQueue = false;

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
      // amqplib leaves Nagle on: small frames (acks, confirms, the RPCs of a join) would wait for the
      // previous segment's ACK, tens of milliseconds on a quiet link.
      noDelay: true,
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
      // Reconnections are counted from state changes by app.ts (trackBackendState), like every backend's.
      this.reconnects += 1;
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
    const state = newProfileState(
      onDelivery,
      relayQueueName(this.options.nodeId, profile),
      new DeliveryMode(this.options.peerCheckIntervalMs ?? peerCheckIntervalMs, this.options.nodeQueueExpiresMs),
    );
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
    for (const state of this.profiles.values()) clearTimeout(state.reattachTimer);
    const link = this.link;
    if (link?.alive) {
      await Promise.allSettled([...this.profiles.values()].map((state) => this.detachConsumer(link, state)));
      // The sockets are closed before the broker (so their profiles were normally unsubscribed already):
      // what is left in this node's relay queues goes back to the mailboxes, and the queues with it.
      const states = [...this.profiles.values()];
      this.profiles.clear();
      await this.handBackAll(link, states).catch((err: unknown) => this.options.log.warn({ reason: errorText(err) }, 'could not hand back the relay queues'));
    }
    this.profiles.clear();
    // Acks still waiting for their batch go out now: otherwise their messages would be delivered again.
    link?.relayAcks.flush();
    link?.nodeAcks.flush();
    await this.connection?.close().catch(() => {});
    this.setState('down');
  }

  private async unsubscribe(profile: ProfileId, state: ProfileState): Promise<void> {
    if (this.profiles.get(profile) !== state) return;
    this.profiles.delete(profile);
    clearTimeout(state.reattachTimer);
    state.reattachTimer = undefined;
    const link = state.link;
    // Link down: the relay queue stays; it is not consumed again and expires (its copies back to the mailbox first).
    if (!link?.alive) return;
    await this.detachConsumer(link, state);
    const mailbox = mailboxQueueName(this.options.queuePrefix, profile);
    if (state.saidHello) {
      // Lets the active node stop relaying for this node at once instead of at its next consumer count. A
      // node that never said hello was the mailbox's only consumer when it attached, so its active one
      // until now: nobody relays to it.
      await confirmPublish(link.publisher, '', mailbox, Buffer.alloc(0), { headers: { [markerHeader]: 'bye', [markerNodeHeader]: this.options.nodeId } }).catch(
        // The active node then notices at its next consumer count instead.
        (e: unknown) => this.logCleanupFailure(profile, 'bye marker', e),
      );
    }
    await this.closeRelayQueue(link, state, mailbox);
  }

  private async detachConsumer(link: Link, state: ProfileState): Promise<void> {
    const tag = state.consumerTag;
    state.consumerTag = undefined;
    if (tag && link.alive) await link.relay.cancel(tag);
  }

  /**
   * Stops the copies for a profile this node left: unbinds its relay queue (no new copies), cancels its
   * consumer, gives back what it still holds (see giveBack) and deletes it. Copies already handed to the
   * (gone) sockets settle on their own: with no socket left they are given back the same way.
   */
  private async closeRelayQueue(link: Link, state: ProfileState, mailbox: string): Promise<void> {
    if (!state.relayQueueDeclared && !state.relayConsumer) return;
    const consumer = state.relayConsumer;
    state.relayConsumer = undefined;
    if (consumer?.link === link) {
      await consumer.ready.catch(() => {});
      if (consumer.consumerTag && link.alive) await link.node.cancel(consumer.consumerTag);
    }
    if (!state.relayQueueDeclared) return;
    const channel = await this.declarerChannel(link);
    await channel.unbindQueue(state.relayQueue, relayExchange, mailbox);
    await this.handBackRelayQueue(link, state.relayQueue);
    state.relayQueueDeclared = false;
  }

  /**
   * Becomes a (single active) consumer of the profile's mailbox. Then asks the mailbox's consumer count:
   * alone, this node is the active consumer and delivers directly, with no relay queue and no marker (the
   * common case costs no more than a plain consumer). Otherwise it declares, binds and consumes its relay
   * queue for the profile and then puts a hello marker in the mailbox. The marker reaches the active node
   * in publish order: from it on, that node relays to this one, so every message published after this join
   * reaches this node. Another consumer seen before consuming, or a relay queue left from the previous
   * link, makes it set up the relay queue first, so copies waiting there flow again at once.
   */
  private async attach(link: Link, profile: ProfileId, state: ProfileState): Promise<void> {
    const mailbox = mailboxQueueName(this.options.queuePrefix, profile);
    state.saidHello = false;
    state.relayEpoch = `${this.options.nodeId}:${this.runId}:${(this.attachSeq++).toString(36)}:`;
    const othersPossible = (await this.declareMailbox(link, mailbox, true)) !== 0 || state.relayQueueDeclared;
    state.mode.attached(othersPossible);
    if (othersPossible) await this.ensureRelayQueue(link, profile, state);
    const { consumerTag } = await link.relay.consume(
      mailbox,
      link.relayAcks.tracking((msg) => this.onMailboxMessage(link, profile, state, msg)),
    );
    if (this.profiles.get(profile) !== state || !link.alive) {
      // Unsubscribed (or disconnected) while attaching.
      if (link.alive) await link.relay.cancel(consumerTag).catch((e: unknown) => this.logCleanupFailure(profile, 'mailbox consumer', e));
      if (link.alive && this.profiles.get(profile) !== state) {
        await this.closeRelayQueue(link, state, mailbox).catch((e: unknown) => this.logCleanupFailure(profile, 'relay queue', e));
      }
      return;
    }
    state.consumerTag = consumerTag;
    state.link = link;
    try {
      if (!state.relayQueueDeclared) {
        const token = state.mode.beginCheck(true);
        const consumers = await this.declareMailbox(link, mailbox, true);
        if (token !== undefined) state.mode.checkDone(token, consumers);
        if (consumers === 1) return;
        await this.ensureRelayQueue(link, profile, state);
      }
      await confirmPublish(link.publisher, '', mailbox, Buffer.alloc(0), { headers: { [markerHeader]: 'hello', [markerNodeHeader]: this.options.nodeId } });
      state.saidHello = true;
    } catch (err) {
      // A consumer left behind would take the profile's messages for a subscription that failed; a relay
      // queue left consumed would never expire and would refuse the next join's exclusive consumer.
      await this.detachConsumer(link, state).catch((e: unknown) => this.logCleanupFailure(profile, 'mailbox consumer', e));
      if (link.alive) {
        await this.closeRelayQueue(link, state, mailbox).catch((e: unknown) => this.logCleanupFailure(profile, 'relay queue', e));
      }
      throw err;
    }
  }

  /**
   * Declares, binds and consumes this node's relay queue for the profile on `link`, once per link; the
   * returned promise settles when copies may be relayed (rejects if that failed; the next call retries).
   */
  private ensureRelayQueue(link: Link, profile: ProfileId, state: ProfileState): Promise<void> {
    if (state.relayConsumer?.link === link) return state.relayConsumer.ready;
    // A late caller on a dropped link must not replace the consumer the current link is setting up.
    if (!link.alive) return Promise.reject(new Error('broker link dropped'));
    const consumer: RelayConsumer = { link, ready: Promise.resolve(), consumerTag: undefined, live: false };
    state.relayConsumer = consumer;
    consumer.ready = this.openRelayQueue(link, profile, state, consumer);
    consumer.ready.catch((err: unknown) => {
      if (state.relayConsumer !== consumer) return; // given up on purpose (unsubscribed, link dropped)
      state.relayConsumer = undefined;
      this.options.log.error({ profileId: profile, queue: state.relayQueue, reason: errorText(err) }, 'could not set up the relay queue');
    });
    return consumer.ready;
  }

  private async openRelayQueue(link: Link, profile: ProfileId, state: ProfileState, consumer: RelayConsumer): Promise<void> {
    const mailbox = mailboxQueueName(this.options.queuePrefix, profile);
    const args = { durable: true, arguments: relayQueueArguments(this.options.nodeQueueExpiresMs, mailbox) };
    const channel = await this.declarerChannel(link);
    try {
      await channel.assertQueue(state.relayQueue, args);
    } catch (err) {
      if ((err as { code?: number }).code !== 406) throw err;
      // Left by an earlier run with another notify.nodeQueueExpiresMs: hand it back and start afresh. The
      // refusal closed the declarer channel.
      if (link.declarer && (await link.declarer.catch(() => undefined)) === channel) link.declarer = undefined;
      await this.handBackRelayQueue(link, state.relayQueue);
      await (await this.declarerChannel(link)).assertQueue(state.relayQueue, args);
    }
    state.relayQueueDeclared = true;
    await (await this.declarerChannel(link)).bindQueue(state.relayQueue, relayExchange, mailbox);
    if (state.relayConsumer !== consumer || !link.alive) throw new Error('relay queue no longer wanted on this link');
    const { consumerTag } = await link.node.consume(
      state.relayQueue,
      link.nodeAcks.tracking((msg) => this.onRelayCopy(link, profile, state, msg)),
      { exclusive: true },
    );
    consumer.consumerTag = consumerTag;
    consumer.live = true;
    state.relaySetupFailures = 0;
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
    const marker = msg.properties.headers?.[markerHeader];
    if (marker !== undefined) {
      this.onMarker(link, profile, state, String(marker), String(msg.properties.headers?.[markerNodeHeader] ?? ''));
      link.relayAcks.ack(msg);
      return;
    }
    const headers = msg.properties.headers;
    if (headers?.['x-death'] !== undefined && expiredRelayCopy(headers['x-death'], headers[markerNodeHeader], profile) === 'drop') {
      // A copy that waited out its time in another node's (abandoned) relay queue: the node that relayed
      // it had its own copy. Sending it on would only bounce it through that queue again.
      link.relayAcks.ack(msg);
      log.info({ profileId: profile }, 'expired relay copy of another node dropped');
      return;
    }
    const check = checkNotification(msg.content);
    if (!check.ok) {
      link.relayAcks.nack(msg, false);
      metrics?.messagesDeadLettered.inc();
      log.warn({ profileId: profile, reason: check.reason, bytes: msg.content.length }, 'message dead-lettered: not a valid notification');
      return;
    }
    if (state.mode.direct) {
      this.deliverDirectly(link, profile, state, msg);
      return;
    }
    if (this.profiles.get(profile) !== state || state.reattachTimer !== undefined) {
      // Left the profile, or stepping aside (stepAside): the consumer's cancel is on its way. Keep it for
      // the next holder.
      link.relayAcks.nack(msg, true);
      return;
    }
    // In flight from here on, not from its publish: while it waits for the relay queue below, a count
    // saying "alone" must not let newer messages go direct ahead of it.
    state.mode.relayed();
    this.checkPeers(link, profile, state, false);
    if (state.relayConsumer?.link === link && state.relayConsumer.live) {
      this.relay(link, profile, state, msg);
      return;
    }
    // This node relays (a hello arrived) but has no relay queue yet: the copies for its own sockets need
    // one. Messages arriving meanwhile wait on the same promise, so they are relayed in order.
    this.ensureRelayQueue(link, profile, state).then(
      () => this.relay(link, profile, state, msg),
      () => {
        state.mode.relayFailed();
        if (!link.alive) return;
        link.relayAcks.nack(msg, true);
        this.stepAside(link, profile, state);
      },
    );
  }

  /**
   * This node must relay but cannot set up its relay queue (e.g. RabbitMQ permissions refuse
   * `switchboard.relay.*`). Retrying at every redelivery of the requeued messages would spin, so it
   * cancels its mailbox consumer (another node holding the profile becomes the active one and serves it)
   * and attaches again after a delay that doubles with each failure in a row, up to relaySetupRetryMaxMs.
   */
  private stepAside(link: Link, profile: ProfileId, state: ProfileState): void {
    if (state.reattachTimer !== undefined || this.profiles.get(profile) !== state || !link.alive) return;
    state.relaySetupFailures += 1;
    const delayMs = Math.min(relaySetupRetryMaxMs, relaySetupRetryMs * 2 ** Math.min(state.relaySetupFailures - 1, 10));
    this.options.log.warn(
      { profileId: profile, queue: state.relayQueue, failures: state.relaySetupFailures, retryInMs: delayMs },
      'relay queue unavailable; leaving the mailbox to the other nodes and attaching again later',
    );
    this.detachConsumer(link, state).catch((err: unknown) => this.logCleanupFailure(profile, 'mailbox consumer', err));
    state.reattachTimer = setTimeout(() => {
      state.reattachTimer = undefined;
      if (this.profiles.get(profile) !== state || this.link !== link || !link.alive) return;
      this.attach(link, profile, state).catch((err: unknown) => {
        this.options.log.error({ profileId: profile, reason: errorText(err) }, 'attaching again after a relay queue failure failed');
        this.stepAside(link, profile, state);
      });
    }, delayMs);
    state.reattachTimer.unref();
  }

  /**
   * Publishes a message to every node holding the profile, this one included (mandatory, confirmed), and
   * acknowledges it in the mailbox once RabbitMQ confirmed the copies. The caller counted it in flight.
   */
  private relay(link: Link, profile: ProfileId, state: ProfileState, msg: ConsumeMessage): void {
    if (!link.alive) return; // the mailbox message returns to the queue with the connection
    const { log } = this.options;
    const relayId = `${state.relayEpoch}${(this.relaySeq++).toString(36)}`;
    const headers: Record<string, unknown> = { ...(msg.properties.headers ?? {}), [relayHeader]: relayId, [markerNodeHeader]: this.options.nodeId };
    if (state.mode.hasKnownPeers) headers[sharedHeader] = true;
    const onConfirm = (err: unknown) => {
      const returned = link.returned.delete(relayId);
      if (!link.alive) return; // the mailbox message returns to the queue with the connection
      if (err || returned) {
        state.mode.relayFailed();
        if (returned) log.warn({ profileId: profile }, 'relay copy unroutable; requeued in the mailbox');
        link.relayAcks.nack(msg, true);
      } else {
        link.relayAcks.ack(msg);
      }
    };
    try {
      link.publisher.publish(
        relayExchange,
        msg.fields.routingKey || mailboxQueueName(this.options.queuePrefix, profile),
        msg.content,
        { persistent: msg.properties.deliveryMode === 2, mandatory: true, headers, contentType: msg.properties.contentType },
        onConfirm,
      );
    } catch (err) {
      // The publisher channel just closed: its close rebuilds the link, which closes the mailbox consumer's
      // channel too, so the message returns to the mailbox.
      state.mode.relayFailed();
      log.warn({ profileId: profile, reason: errorText(err) }, 'relay publish failed; the link is rebuilt and the message redelivered');
    }
  }

  /**
   * The profile's only node: deliver from the mailbox straight to the local sockets and acknowledge once
   * written, with no relay hop (half the broker work). Used only while no other node holds the profile and
   * no relay copy of this node is still on its way back, so the order is kept across the switch.
   */
  private deliverDirectly(link: Link, profile: ProfileId, state: ProfileState, msg: ConsumeMessage): void {
    this.options.metrics?.messagesReceived.inc();
    const verdict = this.handOver(profile, state, msg.content);
    const settle = (v: DeliveryVerdict) => {
      if (!link.alive) return;
      if (v === 'ack') link.relayAcks.ack(msg);
      else link.relayAcks.nack(msg, v === 'requeue');
    };
    if (typeof verdict === 'string') settle(verdict);
    else verdict.then(settle, () => settle('requeue'));
  }

  private onMarker(link: Link, profile: ProfileId, state: ProfileState, marker: string, node: string): void {
    if (node === this.options.nodeId) return;
    if (marker === 'hello') {
      state.mode.hello(node);
      this.options.log.debug({ profileId: profile, peer: node }, 'another node joined the profile; relaying');
    } else if (marker === 'bye') {
      state.mode.bye(node);
      this.checkPeers(link, profile, state, true);
    }
  }

  /**
   * Asks RabbitMQ how many nodes consume the mailbox (waiting single-active consumers count too). Alone:
   * forget peers that left without a word (a crash), so delivery can go direct again.
   */
  private checkPeers(link: Link, profile: ProfileId, state: ProfileState, urgent: boolean): void {
    const token = state.mode.beginCheck(urgent);
    if (token === undefined) return;
    this.declareMailbox(link, mailboxQueueName(this.options.queuePrefix, profile), true).then(
      (consumers) => {
        this.options.log.debug({ profileId: profile, consumers }, 'mailbox consumer count');
        state.mode.checkDone(token, consumers);
      },
      () => state.mode.checkDone(token, undefined),
    );
  }

  private onRelayCopy(link: Link, profile: ProfileId, state: ProfileState, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.options.log.error({ profileId: profile, queue: state.relayQueue }, 'relay queue consumer cancelled by the broker; reconnecting the link');
      this.relink(link);
      return;
    }
    this.options.metrics?.messagesReceived.inc();
    const current = this.profiles.get(profile) === state;
    const relayId = msg.properties.headers?.[relayHeader];
    // A redelivered copy (requeued after a failed hand-back) was counted when it first came back.
    if (current && !msg.fields.redelivered && typeof relayId === 'string' && relayId.startsWith(state.relayEpoch)) state.mode.copyBack();
    const verdict = current ? this.handOver(profile, state, msg.content) : 'requeue';
    if (typeof verdict === 'string') this.settleCopy(link, msg, verdict);
    else verdict.then((v) => this.settleCopy(link, msg, v), () => this.settleCopy(link, msg, 'requeue'));
  }

  private logCleanupFailure(profile: ProfileId, what: string, err: unknown): void {
    this.options.log.warn({ profileId: profile, what, reason: errorText(err) }, 'could not clean up after a profile left or a join failed');
  }

  /** Gives a message to the local sockets; a handler that throws counts as "could not deliver". */
  private handOver(profile: ProfileId, state: ProfileState, body: Buffer): DeliveryVerdict | Promise<DeliveryVerdict> {
    try {
      return state.handler(body);
    } catch (err) {
      this.options.log.error({ profileId: profile, reason: errorText(err) }, 'delivery handler failed');
      return 'requeue';
    }
  }

  private settleCopy(link: Link, msg: ConsumeMessage, verdict: DeliveryVerdict): void {
    if (!link.alive) return; // unacknowledged: it stays in this node's durable queue
    if (verdict === 'ack') {
      link.nodeAcks.ack(msg);
      return;
    }
    if (verdict === 'reject') {
      // Dropped: a relay queue dead-letters into the mailbox, which would only bring it back.
      this.options.metrics?.messagesDeadLettered.inc();
      link.nodeAcks.ack(msg);
      return;
    }
    this.giveBack(link, msg).then(
      () => link.nodeAcks.ack(msg),
      () => link.nodeAcks.nack(msg, true),
    );
  }

  /**
   * A copy nobody here can take any more (the profile's last local socket left). A copy another node
   * relayed is dropped: that node holds the profile and got its own copy, so sending it back would
   * deliver it twice. So is a copy this node relayed while it knew other holders (a hello, no bye or
   * count since): each of them got its own copy, and one sent back would reach them again, after newer
   * messages. A copy this node relayed while it knew no other holder goes back to the mailbox, as this
   * node may have been its only holder.
   */
  private async giveBack(link: Link, msg: Message): Promise<void> {
    const headers = msg.properties.headers;
    if (headers?.[markerNodeHeader] !== this.options.nodeId || headers[sharedHeader] === true) return;
    await this.returnToMailbox(link, msg);
  }

  private async returnToMailbox(link: Link, msg: Message): Promise<void> {
    const queue = msg.fields.routingKey;
    await this.declareMailbox(link, queue);
    const headers = { ...(msg.properties.headers ?? {}) };
    delete headers[relayHeader];
    delete headers[markerNodeHeader];
    delete headers[sharedHeader];
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
    link.nodeAcks.ack(msg);
  }

  /** Builds the channels and topology on a fresh connection and re-attaches every joined profile. */
  private async setup(model: ChannelModel): Promise<void> {
    const { log, prefetch, deadLetterQueue } = this.options;
    try {
      const publisher = await model.createConfirmChannel();
      const relay = await model.createChannel();
      const node = await model.createChannel();
      const link: Link = {
        model,
        publisher,
        relay,
        relayAcks: new AckBatcher(relay),
        node,
        nodeAcks: new AckBatcher(node),
        declarer: undefined,
        returned: new Set(),
        nodeConsumers: [],
        alive: true,
      };
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
      if (!this.resumedNodeQueue) {
        // The one shared relay queue an earlier version with this NODE_ID left: give back what it holds
        // and delete it, which also drops its bindings.
        await this.discardEarlierNodeQueue(link);
        this.resumedNodeQueue = true;
      }

      // Per consumer (not per channel): each mailbox and each relay queue gets its own window.
      await relay.prefetch(prefetch);
      await node.prefetch(prefetch);
      this.link = link;
      this.declaredAt.clear();
      const logConsumer = await node.consume(
        logQueue,
        link.nodeAcks.tracking((msg) => this.onDeadLetterLog(link, msg)),
      );
      link.nodeConsumers.push(logConsumer.consumerTag);
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

  /**
   * A channel died on a live connection: rebuild the whole link on the same connection. The old link's
   * other channels are closed first: left open, its mailbox consumers would stay the single active
   * consumers (their deliveries never settled, as the link is dead), its exclusive relay queue consumers
   * would refuse the new ones, and every relink would leak channels.
   */
  private relink(link: Link): void {
    if (this.link !== link) return;
    this.dropLink();
    this.setupRun = this.setupRun.then(async () => {
      await this.closeChannels(link);
      await this.setup(link.model);
    });
  }

  /** Closes a dead link's channels; unsettled deliveries go back to their queues. */
  private async closeChannels(link: Link): Promise<void> {
    const declarer = link.declarer ? await link.declarer.catch(() => undefined) : undefined;
    link.declarer = undefined;
    const channels: Channel[] = [link.publisher, link.relay, link.node, ...(declarer ? [declarer] : [])];
    await Promise.all(
      channels.map((channel) =>
        channel.close().catch((err: unknown) => this.options.log.debug({ reason: errorText(err) }, 'channel of a dropped link already closed')),
      ),
    );
  }

  private dropLink(): void {
    if (this.link) this.link.alive = false;
    this.link = undefined;
    for (const state of this.profiles.values()) {
      state.consumerTag = undefined;
      state.link = undefined;
      state.relayConsumer = undefined;
      // The new link's setup attaches every profile again.
      clearTimeout(state.reattachTimer);
      state.reattachTimer = undefined;
    }
    if (!this.closing) this.setState('down');
  }

  private async discardEarlierNodeQueue(link: Link): Promise<void> {
    const probe = await link.model.createChannel();
    probe.on('error', () => {});
    const exists = await probe.checkQueue(this.nodeQueue).then(
      () => true,
      () => false,
    );
    if (exists) await probe.close().catch(() => {});
    if (!exists) return;
    let given = 0;
    for (let msg = await link.node.get(this.nodeQueue); msg !== false && given < 1_000_000; msg = await link.node.get(this.nodeQueue)) {
      await this.giveBack(link, msg);
      link.node.ack(msg);
      given += 1;
    }
    await link.publisher.deleteQueue(this.nodeQueue);
    this.options.log.info({ queue: this.nodeQueue, messages: given }, 'relay queue of an earlier run handed back and deleted');
  }

  /**
   * On close: stops every relay queue consumer, puts back what they hold (the sockets are gone), then gives
   * every copy still queued for this node back to its mailbox (see giveBack) and deletes the queues.
   */
  private async handBackAll(link: Link, states: ProfileState[]): Promise<void> {
    link.alive = false; // from here on, nothing settles a copy through the consumers
    for (const tag of link.nodeConsumers) await link.node.cancel(tag);
    for (const state of states) {
      const tag = state.relayConsumer?.link === link ? state.relayConsumer.consumerTag : undefined;
      if (tag) await link.node.cancel(tag);
    }
    link.node.nackAll(true);
    link.nodeAcks.clear();
    for (const state of states) {
      if (state.relayQueueDeclared) await this.handBackRelayQueue(link, state.relayQueue);
    }
  }

  /**
   * Gives back every copy a relay queue holds (see giveBack), then deletes it (and with it its bindings).
   * On a channel of its own, so that a long hand-back holds up no declare of joins, publishes or counts,
   * and through a consumer with a prefetch window rather than one basic.get round trip per copy.
   */
  private async handBackRelayQueue(link: Link, queue: string): Promise<void> {
    const { log } = this.options;
    const channel = await link.model.createChannel();
    channel.on('error', (err: Error) => log.warn({ queue, reason: err.message }, 'relay queue hand-back channel error'));
    try {
      const given = await this.drainRelayQueue(link, channel, queue);
      await channel.deleteQueue(queue);
      log.debug({ queue, copies: given }, 'relay queue handed back and deleted');
    } finally {
      await channel.close().catch((err: unknown) => log.debug({ queue, reason: errorText(err) }, 'hand-back channel already closed'));
    }
  }

  /**
   * Consumes a relay queue until an end marker put at its tail now comes back: the queue is delivered in
   * order, so every copy queued before it was given back (in order, each acknowledged once given back).
   * Resolves with the number of copies; rejects if a give-back fails or the channel or consumer goes away
   * (what is unacknowledged then stays in the queue).
   */
  private async drainRelayQueue(link: Link, channel: Channel, queue: string): Promise<number> {
    const endId = `end:${this.runId}:${(this.relaySeq++).toString(36)}`;
    let copies = 0;
    let chain: Promise<void> = Promise.resolve();
    let settle!: { resolve: (n: number) => void; reject: (err: unknown) => void };
    const drained = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
    drained.catch(() => {}); // awaited below; a rejection before that is not unhandled
    channel.once('close', () => settle.reject(new Error('hand-back channel closed')));
    await channel.prefetch(handBackPrefetch);
    await channel.consume(queue, (msg) => {
      if (msg === null) {
        settle.reject(new Error('relay queue deleted during its hand-back'));
        return;
      }
      if (msg.properties.headers?.[relayHeader] === endId) {
        chain.then(() => {
          channel.ack(msg);
          settle.resolve(copies);
        }, settle.reject);
        return;
      }
      copies += 1;
      chain = chain.then(async () => {
        await this.giveBack(link, msg);
        channel.ack(msg);
      });
      chain.catch(settle.reject);
    });
    // No node header: should it ever leave this queue (expired), every node drops it as a marker.
    channel.sendToQueue(queue, Buffer.alloc(0), { headers: { [markerHeader]: 'end', [relayHeader]: endId } });
    return drained;
  }

  /** The channel for declares and relay queue housekeeping, opened again after a refusal closed it. */
  private declarerChannel(link: Link): Promise<Channel> {
    if (link.declarer) return link.declarer;
    const opened: Promise<Channel> = link.model.createChannel().then((channel) => {
      channel.on('error', () => {});
      channel.on('close', () => {
        if (link.declarer === opened) link.declarer = undefined;
      });
      return channel;
    });
    link.declarer = opened;
    return opened;
  }

  /** Declares a mailbox (cached unless forced); resolves with its consumer count when it was declared. */
  private async declareMailbox(link: Link, queue: string, force = false): Promise<number | undefined> {
    const last = this.declaredAt.get(queue);
    if (!force && last !== undefined && Date.now() - last < mailboxDeclareCacheMs) return undefined;
    const channel = await this.declarerChannel(link);
    let consumers: number;
    try {
      ({ consumerCount: consumers } = await channel.assertQueue(queue, {
        durable: true,
        arguments: mailboxQueueArguments(this.options.retention, this.options.deadLetterQueue),
      }));
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
    return consumers;
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function newProfileState(handler: DeliveryHandler, relayQueue: string, mode: DeliveryMode): ProfileState {
  return {
    handler,
    consumerTag: undefined,
    link: undefined,
    mode,
    relayQueue,
    relayQueueDeclared: false,
    relayConsumer: undefined,
    saidHello: false,
    relayEpoch: '',
    relaySetupFailures: 0,
    reattachTimer: undefined,
  };
}
