import type * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, Message } from 'amqplib';
import type { Logger } from '../../core/logger.js';
import { AckBatcher } from './ack-batcher.js';
import { relayIdOf } from './relay-protocol.js';

/** Socket options of every connection the gateway opens to RabbitMQ (the broker's and the publisher's). */
export function amqpSocketOptions(connectionName: string): { noDelay: true; clientProperties: { connection_name: string } } {
  // amqplib leaves Nagle on: small frames (acks, confirms, the RPCs of a join) would wait for the
  // previous segment's ACK, tens of milliseconds on a quiet link.
  return { noDelay: true, clientProperties: { connection_name: connectionName } };
}

/**
 * Mailbox declares and consumer counts run on this many channels, round-robin. amqplib runs one RPC at a
 * time per channel, so on a single channel a burst of first joins (a declare and a count each) waited in
 * one line, one broker round trip after another (docs/performance.md, joins). A declare is idempotent, so
 * any of them serves any profile.
 */
export const mailboxDeclarerPoolSize = 8;

/**
 * Consumer counts of mailboxes this node already consumes run as passive declares on a pool of their own:
 * a passive declare costs RabbitMQ about a fifth less than a declare (no Mnesia transaction; measured with
 * a raw amqplib probe, docs/performance.md "Joins"), and the queue is known to exist. Its own pool, because
 * a passive declare of a queue an operator just deleted is refused with a channel close, which fails the
 * RPCs queued behind it on that channel: only other counts, never a join's declare.
 */
export const mailboxCheckerPoolSize = 8;

/**
 * Relay queue housekeeping (declare, bind, unbind) runs on this many channels, a queue always on the one
 * its name hashes to: so the operations on one queue keep their issue order (a bind never overtakes its
 * declare, nor an unbind its bind), while the relay queues of a thousand profiles coming up at once no
 * longer wait for each other on one channel (docs/performance.md, issue 16).
 */
export const relayDeclarerPoolSize = 8;

/**
 * Mailbox consumers are spread over this many channels (by profile, laneIndex) for the same reason:
 * each first join's `basic.consume` is an RPC, and on one channel they queued behind each other.
 */
export const mailboxLaneCount = 8;

/** Relay queue consumers too (by profile, laneIndex): a profile's copies stay in order on one channel. */
export const relayQueueLaneCount = 8;

/** A channel that consumes (mailboxes, or relay queues), and the batcher that settles its deliveries. */
export interface ConsumerLane {
  readonly channel: Channel;
  readonly acks: AckBatcher;
}

/** The lane of a profile's consumer among `count`: the same on every link, so a re-attach lands where it was. */
export function laneIndex(key: string, count: number): number {
  let hash = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % count;
}

/** The lane of a profile's mailbox consumer. */
export function mailboxLaneIndex(profile: string): number {
  return laneIndex(profile, mailboxLaneCount);
}

/** The channels of one live connection; replaced as a whole after a reconnect or a channel's loss. */
export interface Link {
  readonly model: ChannelModel;
  /** Confirm channel: relays, re-publishes to mailboxes, markers, publish(). */
  readonly publisher: ConfirmChannel;
  /** Consume the mailboxes of the profiles joined here (single active consumer per mailbox), by mailboxLaneIndex. */
  readonly mailboxLanes: readonly ConsumerLane[];
  /**
   * Consume this node's relay queues (one consumer each, so the prefetch is per profile; a queue on the
   * lane its profile hashes to); lane 0 also the dead-letter log.
   */
  readonly relayQueueLanes: readonly ConsumerLane[];
  /**
   * Relay queue declares, binds and unbinds (relayDeclarerChannel); a refused operation closes only its
   * channel. Each slot opened on demand, again after a refusal.
   */
  readonly relayDeclarers: Array<Promise<Channel> | undefined>;
  /** Mailbox declares (mailboxDeclarerChannel), round-robin; each slot opened on demand, again after a refusal. */
  readonly mailboxDeclarers: RoundRobinPool;
  /** Passive declares of mailboxes consumed here, for their counts (mailboxCheckerChannel), the same way. */
  readonly mailboxCheckers: RoundRobinPool;
  /** Relay copies RabbitMQ returned as unroutable, by relay id, until their confirm arrives. */
  readonly returned: Set<string>;
  /** Consumer tags on relay queue lane 0 other than relay queues' (the dead-letter log). */
  readonly otherConsumers: string[];
  alive: boolean;
}

/** Channels opened on demand, used in turn; a slot whose channel closed (a refusal) opens a new one. */
export interface RoundRobinPool {
  readonly slots: Array<Promise<Channel> | undefined>;
  next: number;
}

function roundRobinPool(size: number): RoundRobinPool {
  return { slots: Array.from({ length: size }, () => undefined), next: 0 };
}

/**
 * Opens a link's channels on `model`. `onLost` is called once a channel of the live link closes (the
 * connection ignores it while closing) (the whole link is then rebuilt: see AmqpConnection.relink).
 */
export async function openLink(model: ChannelModel, log: Logger, onLost: (link: Link, channel: string) => void): Promise<Link> {
  const publisher = await model.createConfirmChannel();
  const mailboxChannels = await Promise.all(Array.from({ length: mailboxLaneCount }, () => model.createChannel()));
  const relayChannels = await Promise.all(Array.from({ length: relayQueueLaneCount }, () => model.createChannel()));
  const link: Link = {
    model,
    publisher,
    mailboxLanes: mailboxChannels.map((channel) => ({ channel, acks: new AckBatcher(channel) })),
    relayQueueLanes: relayChannels.map((channel) => ({ channel, acks: new AckBatcher(channel) })),
    relayDeclarers: Array.from({ length: relayDeclarerPoolSize }, () => undefined),
    mailboxDeclarers: roundRobinPool(mailboxDeclarerPoolSize),
    mailboxCheckers: roundRobinPool(mailboxCheckerPoolSize),
    returned: new Set(),
    otherConsumers: [],
    alive: true,
  };
  const named: Array<[string, Channel]> = [
    ['publisher', publisher],
    ...mailboxChannels.map((c, i): [string, Channel] => [`mailboxes ${i}`, c]),
    ...relayChannels.map((c, i): [string, Channel] => [`relay queues ${i}`, c]),
  ];
  for (const [name, channel] of named) {
    channel.on('error', (err: Error) => log.error({ channel: name, reason: err.message }, 'broker channel error'));
    channel.on('close', () => {
      if (link.alive) onLost(link, name);
    });
  }
  publisher.on('return', (msg: Message) => {
    const id = relayIdOf(msg.properties.headers);
    if (id !== undefined) link.returned.add(id);
  });
  return link;
}

/** Sets each consumer's window (per consumer, not per channel): each mailbox and relay queue gets its own. */
export async function setPrefetch(link: Link, prefetch: number): Promise<void> {
  for (const lane of [...link.mailboxLanes, ...link.relayQueueLanes]) await lane.channel.prefetch(prefetch);
}

/** The next channel of the mailbox declarer pool, opened if its slot is empty or was closed by a refusal. */
export function mailboxDeclarerChannel(link: Link): Promise<Channel> {
  return nextPooledChannel(link, link.mailboxDeclarers);
}

/** The next channel of the mailbox checker pool (passive declares), the same way. */
export function mailboxCheckerChannel(link: Link): Promise<Channel> {
  return nextPooledChannel(link, link.mailboxCheckers);
}

function nextPooledChannel(link: Link, pool: RoundRobinPool): Promise<Channel> {
  const slot = pool.next;
  pool.next = (slot + 1) % pool.slots.length;
  return pooledChannel(link, pool.slots, slot);
}

/** The relay declarer channel of `queue` (the slot its name hashes to), opened if empty or closed by a refusal. */
export function relayDeclarerChannel(link: Link, queue: string): Promise<Channel> {
  return pooledChannel(link, link.relayDeclarers, laneIndex(queue, link.relayDeclarers.length));
}

/** Forgets `queue`'s relay declarer if it is `channel` (a refusal just closed it), so the next call opens another. */
export async function dropRelayDeclarer(link: Link, queue: string, channel: Channel): Promise<void> {
  const slot = laneIndex(queue, link.relayDeclarers.length);
  const opened = link.relayDeclarers[slot];
  if (opened && (await opened.catch(() => undefined)) === channel && link.relayDeclarers[slot] === opened) link.relayDeclarers[slot] = undefined;
}

function pooledChannel(link: Link, slots: Array<Promise<Channel> | undefined>, slot: number): Promise<Channel> {
  const existing = slots[slot];
  if (existing) return existing;
  const forget = () => {
    if (slots[slot] === opened) slots[slot] = undefined;
  };
  const opened: Promise<Channel> = link.model.createChannel().then((channel) => {
    channel.on('error', () => {});
    channel.on('close', forget);
    return channel;
  });
  opened.catch(forget);
  slots[slot] = opened;
  return opened;
}

/** Closes a dead link's channels; unsettled deliveries go back to their queues. */
export async function closeLinkChannels(link: Link, log: Logger): Promise<void> {
  const pooled = [...link.mailboxDeclarers.slots, ...link.mailboxCheckers.slots, ...link.relayDeclarers];
  const pool = await Promise.all(pooled.map((opened) => opened?.catch(() => undefined)));
  link.mailboxDeclarers.slots.fill(undefined);
  link.mailboxCheckers.slots.fill(undefined);
  link.relayDeclarers.fill(undefined);
  const lanes = [...link.mailboxLanes, ...link.relayQueueLanes];
  const channels: Channel[] = [link.publisher, ...lanes.map((lane) => lane.channel), ...pool.filter((c) => c !== undefined)];
  await Promise.all(
    channels.map((channel) => channel.close().catch((err: unknown) => log.debug({ reason: errorText(err) }, 'channel of a dropped link already closed'))),
  );
}

export function confirmPublish(channel: ConfirmChannel, exchange: string, routingKey: string, body: Buffer, options: amqp.Options.Publish): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(exchange, routingKey, body, options, (err: unknown) => (err ? reject(err) : resolve()));
  });
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
