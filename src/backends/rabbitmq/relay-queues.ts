import type { Channel, Message } from 'amqplib';
import type { Logger } from '../../core/logger.js';
import { confirmPublish, dropRelayDeclarer, errorText, type Link, relayDeclarerChannel } from './amqp-link.js';
import type { Mailboxes } from './mailboxes.js';
import type { ProfileRelayQueue } from './profile-relay-queue.js';
import { endMarkerHeaders, mailboxHeadersOf, mayGiveBack, relayIdOf, type RelayIds } from './relay-protocol.js';
import { nodeQueueName, relayExchange, relayQueueArguments } from './topology.js';

/** Copies the emptying of a relay queue takes at a time (see empty). */
const emptyingPrefetch = 256;

/**
 * The lifecycle of this node's relay queues on RabbitMQ: declare and bind, unbind and empty, and the two
 * ideas behind "hand back": giving one copy back to its mailbox (giveBack, under the give-back rule of
 * relay-protocol.ts) and emptying a whole queue that way before deleting it (empty).
 */
export class RelayQueues {
  constructor(
    private readonly options: { nodeId: string; nodeQueueExpiresMs: number; mailboxes: Mailboxes; ids: RelayIds; log: Logger },
  ) {}

  /** Declares the relay queue and binds it to the profile's mailbox name on the relay exchange. */
  async declare(link: Link, queue: string, mailbox: string): Promise<void> {
    const args = { durable: true, arguments: relayQueueArguments(this.options.nodeQueueExpiresMs, mailbox) };
    const channel = await relayDeclarerChannel(link, queue);
    try {
      await channel.assertQueue(queue, args);
    } catch (err) {
      if ((err as { code?: number }).code !== 406) throw err;
      // Left by an earlier run with another notify.nodeQueueExpiresMs: empty it and start afresh. The
      // refusal closed the declarer channel.
      await dropRelayDeclarer(link, queue, channel);
      await this.empty(link, queue, mailbox);
      await (await relayDeclarerChannel(link, queue)).assertQueue(queue, args);
    }
  }

  async bind(link: Link, queue: string, mailbox: string): Promise<void> {
    await (await relayDeclarerChannel(link, queue)).bindQueue(queue, relayExchange, mailbox);
  }

  /** Unbinds the queue (no new copies), gives back what it holds and deletes it. */
  async remove(link: Link, queue: string, mailbox: string): Promise<void> {
    await (await relayDeclarerChannel(link, queue)).unbindQueue(queue, relayExchange, mailbox);
    await this.empty(link, queue, mailbox);
  }

  /**
   * Gives back every copy a relay queue holds, then deletes it (and with it its bindings). On a channel of
   * its own, so that a long emptying holds up no declare of joins, publishes or counts, and through a
   * consumer with a prefetch window rather than one basic.get round trip per copy.
   */
  async empty(link: Link, queue: string, mailbox: string): Promise<void> {
    const { log } = this.options;
    const channel = await link.model.createChannel();
    channel.on('error', (err: Error) => log.warn({ queue, reason: err.message }, 'relay queue hand-back channel error'));
    try {
      const given = await this.consumeToEndMarker(link, channel, queue, mailbox);
      await channel.deleteQueue(queue);
      log.debug({ queue, copies: given }, 'relay queue handed back and deleted');
    } finally {
      await channel.close().catch((err: unknown) => log.debug({ queue, reason: errorText(err) }, 'hand-back channel already closed'));
    }
  }

  /**
   * On close: stops every relay queue consumer, puts back what they hold (the sockets are gone), then
   * empties every relay queue this node has into the mailboxes and deletes it.
   */
  async emptyOnClose(link: Link, queues: ProfileRelayQueue[]): Promise<void> {
    link.alive = false; // from here on, nothing settles a copy through the consumers
    const otherLane = link.relayQueueLanes[0]!;
    const cancels = link.otherConsumers.map((tag) => otherLane.channel.cancel(tag));
    for (const held of queues) {
      const tag = held.consumerTag(link);
      if (tag) cancels.push(held.lane(link).channel.cancel(tag));
    }
    // Every lane's cancels at once (amqplib still sends each channel's one after the other).
    await Promise.all(cancels);
    for (const lane of link.relayQueueLanes) {
      lane.channel.nackAll(true);
      lane.acks.clear();
    }
    for (const held of queues) {
      if (held.declared) await this.empty(link, held.queue, held.mailbox);
    }
  }

  /**
   * A copy nobody here can take any more goes back to its mailbox, or is dropped, by the give-back rule
   * (relay-protocol.ts, mayGiveBack). `mailbox` is passed rather than read from the copy's routing key: a
   * local-first copy is addressed to the relay queue by name. `force`: whatever the give-back rule says (a
   * copy an ack-mode client did not acknowledge).
   */
  async giveBack(link: Link, copy: Message, mailbox: string, force = false): Promise<void> {
    if (!force && !mayGiveBack(copy.properties.headers, this.options.nodeId)) return;
    await this.options.mailboxes.ensure(link, mailbox);
    await confirmPublish(link.publisher, '', mailbox, copy.content, {
      persistent: copy.properties.deliveryMode === 2,
      headers: mailboxHeadersOf(copy.properties.headers),
      contentType: copy.properties.contentType,
    });
  }

  /**
   * The one shared relay queue an earlier version with this NODE_ID left (a migration, run once per
   * process): give back what it holds and delete it, which also drops its bindings.
   */
  async discardEarlierNodeQueue(link: Link): Promise<void> {
    const queue = nodeQueueName(this.options.nodeId);
    const probe = await link.model.createChannel();
    probe.on('error', () => {});
    const exists = await probe.checkQueue(queue).then(
      () => true,
      () => false,
    );
    if (exists) await probe.close().catch(() => {});
    if (!exists) return;
    let given = 0;
    // Before any consumer starts on lane 0 (prepare runs before serve): its AckBatcher sees none of these.
    const channel = link.relayQueueLanes[0]!.channel;
    for (let msg = await channel.get(queue); msg !== false && given < 1_000_000; msg = await channel.get(queue)) {
      // That queue's copies were all routed through the relay exchange, with their mailbox's name.
      await this.giveBack(link, msg, msg.fields.routingKey);
      channel.ack(msg);
      given += 1;
    }
    await link.publisher.deleteQueue(queue);
    this.options.log.info({ queue, messages: given }, 'relay queue of an earlier run handed back and deleted');
  }

  /**
   * Consumes a relay queue until an end marker put at its tail now comes back: the queue is delivered in
   * order, so every copy queued before it was given back (in order, each acknowledged once given back).
   * Resolves with the number of copies; rejects if a give-back fails or the channel or consumer goes away
   * (what is unacknowledged then stays in the queue).
   */
  private async consumeToEndMarker(link: Link, channel: Channel, queue: string, mailbox: string): Promise<number> {
    const endId = this.options.ids.endId();
    let copies = 0;
    let chain: Promise<void> = Promise.resolve();
    let settle!: { resolve: (n: number) => void; reject: (err: unknown) => void };
    const drained = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
    drained.catch(() => {}); // awaited below; a rejection before that is not unhandled
    channel.once('close', () => settle.reject(new Error('hand-back channel closed')));
    await channel.prefetch(emptyingPrefetch);
    await channel.consume(queue, (msg) => {
      if (msg === null) {
        settle.reject(new Error('relay queue deleted during its hand-back'));
        return;
      }
      if (relayIdOf(msg.properties.headers) === endId) {
        chain.then(() => {
          channel.ack(msg);
          settle.resolve(copies);
        }, settle.reject);
        return;
      }
      copies += 1;
      chain = chain.then(async () => {
        await this.giveBack(link, msg, mailbox);
        channel.ack(msg);
      });
      chain.catch(settle.reject);
    });
    channel.sendToQueue(queue, Buffer.alloc(0), { headers: endMarkerHeaders(endId) });
    return drained;
  }
}
