import type { ConsumeMessage } from 'amqplib';
import type { ProfileId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { DeliveryHandler, DeliveryVerdict } from '../../core/notification-broker.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { checkNotification } from '../../protocol/notify.js';
import { confirmPublish, errorText, type Link, type ConsumerLane, mailboxLaneIndex } from './amqp-link.js';
import { DeliveryModeTracker } from './delivery-mode-tracker.js';
import type { Mailboxes } from './mailboxes.js';
import {
  batchHeader,
  batchVerdict,
  encodeBatch,
  expiredCopyToDrop,
  markerHeaders,
  maxBatchBytes,
  maxBatchParts,
  notificationCount,
  notificationsOf,
  readMarker,
  relayCopyHeaders,
  relayIdOf,
  type RelayIds,
} from './relay-protocol.js';
import { ProfileRelayQueue } from './profile-relay-queue.js';
import type { RelayQueues } from './relay-queues.js';
import { relayExchange, relayQueueName } from './topology.js';

const relaySetupRetryMs = 1_000;
const relaySetupRetryMaxMs = 30_000;

/** What every subscription of one broker shares. */
export interface SubscriptionContext {
  readonly nodeId: string;
  readonly log: Logger;
  readonly metrics?: GatewayMetrics;
  readonly ids: RelayIds;
  readonly mailboxes: Mailboxes;
  readonly relayQueues: RelayQueues;
  readonly peerCheckIntervalMs: number;
  readonly nodeQueueExpiresMs: number;
  /**
   * Local-first messages whose local write may still be pending, per profile, beyond which the next ones
   * are relayed through this node's own relay queue instead (see onMailboxMessage).
   */
  readonly localBacklogLimit: number;
  /** The broker's live link now (a new one after every reconnect or rebuild). */
  currentLink(): Link | undefined;
  /** A channel of `link` misbehaved: rebuild the link. */
  relink(link: Link): void;
}

/**
 * One profile joined on this node: its mailbox consumer, its relay queue and the switch between direct
 * and relayed delivery (docs/rabbitmq-design.md). Everything it starts on a link checks, when it comes
 * back, that the subscription still stands (`active`) and the link still lives (`link.alive`).
 */
export class ProfileSubscription {
  /** False once unsubscribed or the broker closed: late callbacks then only clean up. */
  active = true;
  /** The link its mailbox consumer runs on, once attached. */
  private link: Link | undefined;
  private mailboxConsumerTag: string | undefined;
  private readonly mode: DeliveryModeTracker;
  readonly mailbox: string;
  /** Which of a link's mailbox channels consumes this profile's mailbox (amqp-link.ts, mailboxLaneIndex). */
  private readonly laneIndex: number;
  /** This node's relay queue for the profile (topology.ts, relayQueueName). */
  readonly relayQueue: ProfileRelayQueue;
  /** This node put a hello in the mailbox on its current attach, so the active node may relay to it. */
  private saidHello = false;
  /** Prefix of the relay ids of copies this node relays during its current attach. */
  private relayEpoch = '';
  /** Relay queue setups that failed in a row while relaying (see stepAside); reset by one that works. */
  private relaySetupFailures = 0;
  /** Attaches again after stepAside; the mailbox consumer is cancelled meanwhile. */
  private reattachTimer: NodeJS.Timeout | undefined;
  /** Mailbox messages to relay, in order, while a copy of this profile awaits its confirm (see relay). */
  private copiesWaiting: WaitingCopy[] = [];
  /** The link those messages came from (their delivery tags are its channels'). */
  private copiesLink: Link | undefined;
  /** A copy relayed on copiesLink awaits its confirm. */
  private copyOut = false;
  /** Local-first messages whose local delivery has not settled yet (see localBacklogLimit). */
  private localPending = 0;
  /** Local-first mailbox messages not yet settled (given back before the mailbox consumer is cancelled). */
  private readonly unsettledLocal = new Set<WaitingCopy>();
  /** The link on which this node's own relay queue was last asked for by a local-first message. */
  private ownQueueAskedOn: Link | undefined;

  constructor(
    private readonly ctx: SubscriptionContext,
    readonly profile: ProfileId,
    private readonly handler: DeliveryHandler,
  ) {
    this.mailbox = ctx.mailboxes.name(profile);
    this.laneIndex = mailboxLaneIndex(profile);
    this.relayQueue = new ProfileRelayQueue(
      relayQueueName(ctx.nodeId, profile),
      this.mailbox,
      ctx.relayQueues,
      ctx.log,
      profile,
      (link, msg) => this.onRelayCopy(link, msg),
      () => (this.relaySetupFailures = 0),
    );
    this.mode = new DeliveryModeTracker(ctx.peerCheckIntervalMs, ctx.nodeQueueExpiresMs);
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
  async attach(link: Link): Promise<void> {
    const { ctx } = this;
    this.saidHello = false;
    this.relayEpoch = ctx.ids.newEpoch();
    const othersPossible = (await ctx.mailboxes.consumerCount(link, this.mailbox)) !== 0 || this.relayQueue.declared;
    this.mode.attached(othersPossible);
    if (othersPossible) await this.relayQueue.ensure(link);
    const { consumerTag } = await this.lane(link).channel.consume(
      this.mailbox,
      this.lane(link).acks.tracking((msg) => this.onMailboxMessage(link, msg)),
    );
    if (!this.active || !link.alive) {
      // Unsubscribed (or disconnected) while attaching.
      if (link.alive) await this.lane(link).channel.cancel(consumerTag).catch((e: unknown) => this.logCleanupFailure('mailbox consumer', e));
      if (link.alive && !this.active) await this.relayQueue.close(link).catch((e: unknown) => this.logCleanupFailure('relay queue', e));
      return;
    }
    this.mailboxConsumerTag = consumerTag;
    this.link = link;
    try {
      if (!this.relayQueue.declared) {
        const token = this.mode.beginCheck(true);
        const consumers = await ctx.mailboxes.consumerCountOfConsumed(link, this.mailbox);
        if (token !== undefined) this.mode.checkDone(token, consumers);
        if (consumers === 1) return;
        await this.relayQueue.ensure(link);
      }
      await confirmPublish(link.publisher, '', this.mailbox, Buffer.alloc(0), { headers: markerHeaders('hello', ctx.nodeId) });
      this.saidHello = true;
    } catch (err) {
      // A consumer left behind would take the profile's messages for a subscription that failed; a relay
      // queue left consumed would never expire and would refuse the next join's exclusive consumer.
      await this.cancelMailboxConsumer(link).catch((e: unknown) => this.logCleanupFailure('mailbox consumer', e));
      if (link.alive) await this.relayQueue.close(link).catch((e: unknown) => this.logCleanupFailure('relay queue', e));
      throw err;
    }
  }

  /** Leaves the profile: the active node hears a bye, the relay queue gives back what it holds and goes. */
  async unsubscribe(): Promise<void> {
    this.end();
    const link = this.link;
    // Link down: the relay queue stays; it is not consumed again and expires (its copies back to the mailbox first).
    if (!link?.alive) return;
    await this.cancelMailboxConsumer(link);
    if (this.saidHello) {
      // Lets the active node stop relaying for this node at once instead of at its next consumer count. A
      // node that never said hello was the mailbox's only consumer when it attached, so its active one
      // until now: nobody relays to it.
      await confirmPublish(link.publisher, '', this.mailbox, Buffer.alloc(0), { headers: markerHeaders('bye', this.ctx.nodeId) }).catch(
        // The active node then notices at its next consumer count instead.
        (e: unknown) => this.logCleanupFailure('bye marker', e),
      );
    }
    await this.relayQueue.close(link);
  }

  /** No longer subscribed (unsubscribed, or the broker closes): stops any pending re-attach. */
  end(): void {
    this.active = false;
    this.stopReattaching();
  }

  stopReattaching(): void {
    clearTimeout(this.reattachTimer);
    this.reattachTimer = undefined;
  }

  /** The link dropped: its consumers are gone with it; the next link's setup attaches again. */
  linkDropped(): void {
    this.unsettledLocal.clear(); // they return to the mailbox with the connection
    this.mailboxConsumerTag = undefined;
    this.link = undefined;
    this.relayQueue.linkDropped();
    this.stopReattaching();
  }

  async cancelMailboxConsumer(link: Link): Promise<void> {
    const tag = this.mailboxConsumerTag;
    this.mailboxConsumerTag = undefined;
    if (tag && link.alive) await this.lane(link).channel.cancel(tag);
  }

  private onMailboxMessage(link: Link, msg: ConsumeMessage | null): void {
    const { log, metrics } = this.ctx;
    const profileId = this.profile;
    if (msg === null) {
      // RabbitMQ cancelled the consumer: the mailbox was deleted (by an operator). Re-attach.
      log.warn({ profileId }, 'mailbox consumer cancelled by the broker; re-attaching');
      this.mailboxConsumerTag = undefined;
      if (this.active && link.alive) {
        this.ctx.mailboxes.forget(this.mailbox);
        this.attach(link).catch((err: unknown) => log.error({ profileId, reason: errorText(err) }, 're-attach failed'));
      }
      return;
    }
    const headers = msg.properties.headers;
    const marker = readMarker(headers);
    if (marker !== undefined) {
      this.onMarker(link, marker.marker, marker.node);
      this.lane(link).acks.ack(msg);
      return;
    }
    if (expiredCopyToDrop(headers, profileId)) {
      // A copy that waited out its time in another node's (abandoned) relay queue: the node that relayed
      // it had its own copy. Sending it on would only bounce it through that queue again.
      this.lane(link).acks.ack(msg);
      log.info({ profileId }, 'expired relay copy of another node dropped');
      return;
    }
    // A batch is here only when a relay copy came back (given back, or expired in a relay queue).
    const notifications = notificationsOf(headers, msg.content);
    const invalid = notifications === undefined ? 'not a valid relay batch' : firstInvalid(notifications);
    if (notifications === undefined || invalid !== undefined) {
      this.lane(link).acks.nack(msg, false);
      metrics?.messagesDeadLettered.inc();
      log.warn({ profileId, reason: invalid, bytes: msg.content.length }, 'message dead-lettered: not a valid notification');
      return;
    }
    if (this.mode.direct) {
      this.deliverDirectly(link, msg, notifications);
      return;
    }
    if (!this.active || this.reattachTimer !== undefined) {
      // Left the profile, or stepping aside (stepAside): the consumer's cancel is on its way. Keep it for
      // the next holder.
      this.lane(link).acks.nack(msg, true);
      return;
    }
    // Local first, unless this node's sockets are not keeping up: waiting on them would hold the mailbox,
    // and with it the other holders; through its own relay queue only this node waits.
    if (this.mode.localFirst && this.localPending < this.ctx.localBacklogLimit) {
      this.deliverLocalFirst(link, msg, notifications);
      return;
    }
    // In flight from here on, not from its publish: while it waits for the relay queue below, a count
    // saying "alone" must not let newer messages go direct ahead of it.
    this.mode.relayed(notifications.length);
    this.checkPeers(link, false);
    if (this.relayQueue.liveOn(link)) {
      this.relay(link, msg);
      return;
    }
    // This node relays (a hello arrived) but has no relay queue yet: the copies for its own sockets need
    // one. Messages arriving meanwhile wait on the same promise, so they are relayed in order.
    this.relayQueue.ensure(link).then(
      () => this.relay(link, msg),
      () => {
        this.mode.relayFailed(notifications.length);
        if (!link.alive) return;
        this.lane(link).acks.nack(msg, true);
        this.stepAside(link);
      },
    );
  }

  /**
   * This node must relay but cannot set up its relay queue (e.g. RabbitMQ permissions refuse
   * `switchboard.relay.*`). Retrying at every redelivery of the requeued messages would spin, so it
   * cancels its mailbox consumer (another node holding the profile becomes the active one and serves it)
   * and attaches again after a delay that doubles with each failure in a row, up to relaySetupRetryMaxMs.
   */
  private stepAside(link: Link): void {
    if (this.reattachTimer !== undefined || !this.active || !link.alive) return;
    const { log } = this.ctx;
    this.relaySetupFailures += 1;
    const delayMs = Math.min(relaySetupRetryMaxMs, relaySetupRetryMs * 2 ** Math.min(this.relaySetupFailures - 1, 10));
    log.warn(
      { profileId: this.profile, queue: this.relayQueue.queue, failures: this.relaySetupFailures, retryInMs: delayMs },
      'relay queue unavailable; leaving the mailbox to the other nodes and attaching again later',
    );
    this.giveBackUnsettledLocal(link);
    this.cancelMailboxConsumer(link).catch((err: unknown) => this.logCleanupFailure('mailbox consumer', err));
    this.reattachTimer = setTimeout(() => {
      this.reattachTimer = undefined;
      if (!this.active || this.ctx.currentLink() !== link || !link.alive) return;
      this.attach(link).catch((err: unknown) => {
        log.error({ profileId: this.profile, reason: errorText(err) }, 'attaching again after a relay queue failure failed');
        this.stepAside(link);
      });
    }, delayMs);
    this.reattachTimer.unref();
  }

  /**
   * Before the mailbox consumer is cancelled: the local-first messages still waiting on this node's sockets
   * go back to the mailbox (the next active node delivers them again: at least once), and the acks waiting
   * in the lane's batch go out. RabbitMQ 3.10 and 3.11 can crash a single-active-consumer classic queue
   * whose cancelled consumer keeps messages unacknowledged while new ones arrive
   * (rabbitmq/rabbitmq-server#5460); a local-first message waits on a stalled socket for as long as it stalls.
   */
  private giveBackUnsettledLocal(link: Link): void {
    const { acks } = this.lane(link);
    for (const copy of this.unsettledLocal) acks.nack(copy.msg, true); // a later verdict is then ignored
    this.unsettledLocal.clear();
    acks.flush();
  }

  /**
   * Relays a mailbox message to every node holding the profile, this one included (mandatory, confirmed),
   * and acknowledges it in the mailbox once RabbitMQ confirmed the copy. The caller counted it in flight.
   *
   * One copy per profile is out at a time; the messages that arrive meanwhile go out together when its
   * confirm comes, as one batch copy (relay-protocol.ts, batchHeader). So a profile relayed at one message
   * per confirm round trip costs what it did, and a busy one costs one publish, one confirm and one
   * delivery per holding node for each batch instead of each message: the relay's broker work per message
   * was what bounded its throughput (docs/performance.md, issue 16). Order is kept: copies leave in
   * mailbox order, one after another.
   */
  private relay(link: Link, msg: ConsumeMessage, copy: WaitingCopy = new WaitingCopy(msg, false)): void {
    if (!link.alive) return; // the mailbox message returns to the queue with the connection
    if (this.copiesLink !== link) {
      // A new link: what waited on the old one returns to the mailbox with its connection, and the old
      // copy's confirm no longer holds anything back.
      this.copiesLink = link;
      this.copiesWaiting = [];
      this.copyOut = false;
    }
    this.copiesWaiting.push(copy);
    if (!this.copyOut) this.sendCopy(link);
  }

  /**
   * Publishes the next copy: the first waiting message, with those after it that fit in one batch. A
   * relayed copy goes through the relay exchange to every holder's relay queue, this node's included; a
   * local-first copy (already written here) goes to the other known holders' relay queues by name (the
   * default exchange, the rest in BCC, which RabbitMQ strips, so a copy given back to a mailbox routes
   * nowhere else).
   */
  private sendCopy(link: Link): void {
    if (!link.alive) {
      this.copiesWaiting = []; // they return to the mailbox with the connection
      return;
    }
    const waiting = this.copiesWaiting;
    if (waiting.length === 0) return;
    const first = waiting[0]!;
    const { localFirst } = first;
    let count = 1;
    if (batchable(first.msg)) {
      let bytes = 4 + first.msg.content.length;
      while (count < waiting.length && count < maxBatchParts) {
        const next = waiting[count]!;
        if (next.localFirst !== localFirst || !batchable(next.msg) || !sameProperties(first.msg, next.msg)) break;
        if (bytes + 4 + next.msg.content.length > maxBatchBytes) break;
        bytes += 4 + next.msg.content.length;
        count += 1;
      }
    }
    const copies = waiting.splice(0, count);
    const holders = localFirst ? [...this.mode.knownPeers()].map((node) => relayQueueName(node, this.profile)) : [];
    if (localFirst && holders.length === 0) {
      // Every other holder said bye while these waited: only this node's sockets are left to have them.
      for (const copy of copies) this.copyDone(link, copy, 'alone');
      this.sendCopy(link);
      return;
    }
    const { log, nodeId, ids } = this.ctx;
    const relayId = ids.copyId(this.relayEpoch);
    const { msg } = first;
    // A local-first copy is shared by definition: this node's sockets had the message from the mailbox.
    const headers = relayCopyHeaders(msg.properties.headers, relayId, nodeId, localFirst || this.mode.hasKnownPeers);
    if (count > 1) headers[batchHeader] = count;
    const body = count > 1 ? encodeBatch(copies.map((c) => c.msg.content)) : msg.content;
    const failed = () => {
      for (const c of copies) if (!c.localFirst) this.mode.relayFailed(notificationCount(c.msg.properties.headers));
    };
    const onConfirm = (err: unknown) => {
      const returned = link.returned.delete(relayId);
      if (this.copiesLink !== link) return; // a later link took over; these went back with the old one
      this.copyOut = false;
      if (!link.alive) {
        this.copiesWaiting = []; // they return to the mailbox with the connection
        return;
      }
      if (localFirst) {
        if (returned && !err) {
          log.info({ profileId: this.profile, holders: holders.length }, 'relay queues of the other holders are gone; delivering directly');
          this.mode.peerQueuesGone();
        }
        for (const copy of copies) this.copyDone(link, copy, err ? 'failed' : returned ? 'alone' : 'copied');
      } else if (err || returned) {
        failed();
        if (returned) log.warn({ profileId: this.profile, messages: count }, 'relay copy unroutable; requeued in the mailbox');
        for (const c of copies) this.lane(link).acks.nack(c.msg, true);
      } else {
        for (const c of copies) this.lane(link).acks.ack(c.msg);
      }
      this.sendCopy(link);
    };
    this.copyOut = true;
    const options = { persistent: msg.properties.deliveryMode === 2, mandatory: true, headers, contentType: msg.properties.contentType };
    try {
      if (localFirst) {
        const [to, ...others] = holders;
        link.publisher.publish('', to!, body, others.length > 0 ? { ...options, BCC: others } : options, onConfirm);
      } else {
        link.publisher.publish(relayExchange, msg.fields.routingKey || this.mailbox, body, options, onConfirm);
      }
    } catch (err) {
      // The publisher channel just closed: its close rebuilds the link, which closes the mailbox consumer's
      // channel too, so the messages return to the mailbox.
      this.copyOut = false;
      this.copiesWaiting = [];
      failed();
      log.warn({ profileId: this.profile, reason: errorText(err) }, 'relay publish failed; the link is rebuilt and the message redelivered');
    }
  }

  /**
   * Local first (DeliveryModeTracker.localFirst): writes the message to this node's sockets at once and
   * copies it to the other holders; the mailbox message is settled once both are done (settleLocalFirst).
   * A node that crashes before that leaves it unacknowledged in the mailbox, as in direct mode.
   */
  private deliverLocalFirst(link: Link, msg: ConsumeMessage, notifications: Buffer[]): void {
    this.ctx.metrics?.messagesReceived.inc(notifications.length);
    this.checkPeers(link, false);
    // While others hold the profile, this node's own relay queue must exist: should its broker connection
    // drop, the node that takes over relays through the exchange, and this node's sockets stay joined.
    if (this.ownQueueAskedOn !== link) {
      this.ownQueueAskedOn = link;
      this.relayQueue.ensure(link).catch(() => {}); // ensure logs a failure; the relay path retries it
    }
    const copy = new WaitingCopy(msg, true);
    this.unsettledLocal.add(copy);
    const local = this.deliverAll(notifications);
    if (typeof local === 'string') copy.verdict = local;
    else {
      this.localPending += 1;
      local.then(
        (verdict) => this.localDone(link, copy, verdict),
        () => this.localDone(link, copy, 'requeue'),
      );
    }
    this.relay(link, msg, copy);
  }

  private localDone(link: Link, copy: WaitingCopy, verdict: DeliveryVerdict): void {
    this.localPending -= 1;
    copy.verdict = verdict;
    if (copy.outcome !== undefined) this.settleLocalFirst(link, copy, verdict, copy.outcome);
  }

  private copyDone(link: Link, copy: WaitingCopy, outcome: CopyOutcome): void {
    copy.outcome = outcome;
    if (copy.verdict !== undefined) this.settleLocalFirst(link, copy, copy.verdict, outcome);
  }

  /**
   * Settles a local-first mailbox message once both its local delivery and its copy are done. `copied`:
   * the other holders have their copies, so a message no local socket could take is acknowledged (sending
   * it back would deliver it to them twice); `alone`: no other holder is left, so it is settled as in
   * direct mode; `failed`: no copy was confirmed, so it goes back to the mailbox (this node's sockets may
   * get it twice: at least once).
   */
  private settleLocalFirst(link: Link, copy: WaitingCopy, verdict: DeliveryVerdict, outcome: CopyOutcome): void {
    this.unsettledLocal.delete(copy);
    if (outcome === 'failed') this.settleMailbox(link, copy.msg, 'requeue');
    else this.settleMailbox(link, copy.msg, verdict === 'requeue' && outcome === 'copied' ? 'ack' : verdict);
  }

  /** Settles a mailbox message by its verdict; on a dropped link it returns to the mailbox by itself. */
  private settleMailbox(link: Link, msg: ConsumeMessage, verdict: DeliveryVerdict): void {
    if (!link.alive) return;
    if (verdict === 'ack') this.lane(link).acks.ack(msg);
    else this.lane(link).acks.nack(msg, verdict !== 'reject');
  }

  /**
   * The profile's only node: deliver from the mailbox straight to the local sockets and acknowledge once
   * written, with no relay hop (half the broker work). Used only while no other node holds the profile and
   * no relay copy of this node is still on its way back, so the order is kept across the switch.
   */
  private deliverDirectly(link: Link, msg: ConsumeMessage, notifications: Buffer[]): void {
    this.ctx.metrics?.messagesReceived.inc(notifications.length);
    const verdict = this.deliverAll(notifications);
    const settle = (v: DeliveryVerdict) => this.settleMailbox(link, msg, v);
    if (typeof verdict === 'string') settle(verdict);
    else verdict.then(settle, () => settle('requeue'));
  }

  private onMarker(link: Link, marker: string, node: string): void {
    if (node === this.ctx.nodeId) return;
    if (marker === 'hello') {
      this.mode.hello(node);
      this.ctx.log.debug({ profileId: this.profile, peer: node }, 'another node joined the profile; relaying');
    } else if (marker === 'bye') {
      this.mode.bye(node);
      this.checkPeers(link, true);
    }
  }

  /**
   * Asks RabbitMQ how many nodes consume the mailbox (waiting single-active consumers count too). Alone:
   * forget peers that left without a word (a crash), so delivery can go direct again.
   */
  private checkPeers(link: Link, urgent: boolean): void {
    const token = this.mode.beginCheck(urgent);
    if (token === undefined) return;
    this.ctx.mailboxes.consumerCountOfConsumed(link, this.mailbox).then(
      (consumers) => {
        this.ctx.log.debug({ profileId: this.profile, consumers }, 'mailbox consumer count');
        this.mode.checkDone(token, consumers);
      },
      () => this.mode.checkDone(token, undefined),
    );
  }

  private onRelayCopy(link: Link, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.ctx.log.error({ profileId: this.profile, queue: this.relayQueue.queue }, 'relay queue consumer cancelled by the broker; reconnecting the link');
      this.ctx.relink(link);
      return;
    }
    const notifications = notificationsOf(msg.properties.headers, msg.content);
    if (notifications === undefined) {
      // Not from a gateway (our batches parse): dropped, as a copy that can never be delivered is.
      this.ctx.log.warn({ profileId: this.profile, bytes: msg.content.length }, 'relay copy dropped: not a valid relay batch');
      this.settleCopy(link, msg, 'reject');
      return;
    }
    this.ctx.metrics?.messagesReceived.inc(notifications.length);
    const relayId = relayIdOf(msg.properties.headers);
    // A redelivered copy (requeued after a failed give-back) was counted when it first came back.
    if (this.active && !msg.fields.redelivered && relayId?.startsWith(this.relayEpoch)) this.mode.copyBack(notifications.length);
    const verdict = this.active ? this.deliverAll(notifications) : 'requeue';
    if (typeof verdict === 'string') this.settleCopy(link, msg, verdict);
    else verdict.then((v) => this.settleCopy(link, msg, v), () => this.settleCopy(link, msg, 'requeue'));
  }

  /**
   * Gives the notifications of one broker message (one, or a batch's) to the local sockets, in order; a
   * batch is settled as one message, by its parts' strongest verdict (relay-protocol.ts, batchVerdict), so
   * a batch given back for one part brings the others again too (at least once). A part that can never
   * be delivered is counted as dead-lettered and dropped with its batch's settlement.
   */
  private deliverAll(notifications: Buffer[]): DeliveryVerdict | Promise<DeliveryVerdict> {
    if (notifications.length === 1) return this.deliverLocally(notifications[0]!);
    const verdicts = notifications.map((body) => this.deliverLocally(body));
    const settle = (settled: DeliveryVerdict[]) => {
      const rejected = settled.filter((v) => v === 'reject').length;
      if (rejected > 0) {
        this.ctx.metrics?.messagesDeadLettered.inc(rejected);
        this.ctx.log.warn({ profileId: this.profile, rejected }, 'notifications of a relay batch dropped: they can never be delivered');
      }
      return batchVerdict(settled);
    };
    if (verdicts.every((v): v is DeliveryVerdict => typeof v === 'string')) return settle(verdicts);
    return Promise.all(verdicts.map((v) => Promise.resolve(v).catch((): DeliveryVerdict => 'requeue'))).then(settle);
  }

  /** Gives a message to the local sockets; a handler that throws counts as "could not deliver". */
  private deliverLocally(body: Buffer): DeliveryVerdict | Promise<DeliveryVerdict> {
    try {
      return this.handler(body);
    } catch (err) {
      this.ctx.log.error({ profileId: this.profile, reason: errorText(err) }, 'delivery handler failed');
      return 'requeue';
    }
  }

  private settleCopy(link: Link, msg: ConsumeMessage, verdict: DeliveryVerdict): void {
    if (!link.alive) return; // unacknowledged: it stays in this node's durable queue
    const { acks } = this.relayQueue.lane(link);
    if (verdict === 'ack') {
      acks.ack(msg);
      return;
    }
    if (verdict === 'reject') {
      // Dropped: a relay queue dead-letters into the mailbox, which would only bring it back.
      this.ctx.metrics?.messagesDeadLettered.inc();
      acks.ack(msg);
      return;
    }
    // A copy an ack-mode client did not acknowledge goes back even when other nodes hold the profile.
    this.ctx.relayQueues.giveBack(link, msg, this.mailbox, verdict === 'redeliver').then(
      () => acks.ack(msg),
      () => acks.nack(msg, true),
    );
  }

  private lane(link: Link): ConsumerLane {
    return link.mailboxLanes[this.laneIndex]!;
  }

  private logCleanupFailure(what: string, err: unknown): void {
    this.ctx.log.warn({ profileId: this.profile, what, reason: errorText(err) }, 'could not clean up after a profile left or a join failed');
  }
}

type CopyOutcome = 'copied' | 'alone' | 'failed';

/**
 * A mailbox message waiting for its copy. Local first, it was also given to this node's sockets: it is
 * settled once both its local `verdict` and its copy's `outcome` are known (ProfileSubscription.settleLocalFirst).
 */
class WaitingCopy {
  verdict: DeliveryVerdict | undefined = undefined;
  outcome: CopyOutcome | undefined = undefined;

  constructor(
    readonly msg: ConsumeMessage,
    readonly localFirst: boolean,
  ) {}
}

/** A message that may share a batch copy: a plain notification (no headers: markers, expired copies and batches have some). */
function batchable(msg: ConsumeMessage): boolean {
  const headers = msg.properties.headers;
  if (headers === undefined || headers === null) return true;
  for (const _ in headers) return false;
  return true;
}

/** What a copy carries over from its first message must hold for every message in it. */
function sameProperties(a: ConsumeMessage, b: ConsumeMessage): boolean {
  return a.properties.deliveryMode === b.properties.deliveryMode && a.properties.contentType === b.properties.contentType && a.fields.routingKey === b.fields.routingKey;
}

/** Why the first of these is not a notification, or undefined when all are. */
function firstInvalid(notifications: readonly Buffer[]): string | undefined {
  for (const body of notifications) {
    const check = checkNotification(body);
    if (!check.ok) return check.reason;
  }
  return undefined;
}
