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
 * any of them serves any profile; relay queue housekeeping stays on the one `declarer`, in issue order.
 */
export const mailboxDeclarerPoolSize = 8;

/**
 * Mailbox consumers are spread over this many channels (by profile, mailboxLaneIndex) for the same
 * reason: each first join's `basic.consume` is an RPC, and on one channel they queued behind each other.
 */
export const mailboxLaneCount = 8;

/** A channel that consumes mailboxes, and the batcher that settles its deliveries. */
export interface MailboxLane {
  readonly channel: Channel;
  readonly acks: AckBatcher;
}

/** The lane of a profile's mailbox consumer: the same on every link, so a re-attach lands where it was. */
export function mailboxLaneIndex(profile: string): number {
  let hash = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < profile.length; i++) hash = Math.imul(hash ^ profile.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % mailboxLaneCount;
}

/** The channels of one live connection; replaced as a whole after a reconnect or a channel's loss. */
export interface Link {
  readonly model: ChannelModel;
  /** Confirm channel: relays, re-publishes to mailboxes, markers, publish(). */
  readonly publisher: ConfirmChannel;
  /** Consume the mailboxes of the profiles joined here (single active consumer per mailbox), by mailboxLaneIndex. */
  readonly mailboxLanes: readonly MailboxLane[];
  /** Consumes this node's relay queues (one consumer each, so the prefetch is per profile) and the dead-letter log. */
  readonly relayQueueChannel: Channel;
  /** Settles the deliveries of the consumers on `relayQueueChannel`. */
  readonly relayQueueAcks: AckBatcher;
  /**
   * Declares mailboxes and relay queues, binds, unbinds and deletes; a refused operation closes only this
   * channel. Opened on demand (declarerChannel).
   */
  declarer: Promise<Channel> | undefined;
  /** Mailbox declares and consumer counts (mailboxDeclarerChannel); each slot opened on demand, again after a refusal. */
  readonly mailboxDeclarers: Array<Promise<Channel> | undefined>;
  nextMailboxDeclarer: number;
  /** Relay copies RabbitMQ returned as unroutable, by relay id, until their confirm arrives. */
  readonly returned: Set<string>;
  /** Consumer tags on `relayQueueChannel` other than relay queues' (the dead-letter log). */
  readonly otherConsumers: string[];
  alive: boolean;
}

/**
 * Opens a link's channels on `model`. `onLost` is called once a channel of the live link closes (the
 * connection ignores it while closing) (the whole link is then rebuilt: see AmqpConnection.relink).
 */
export async function openLink(model: ChannelModel, log: Logger, onLost: (link: Link, channel: string) => void): Promise<Link> {
  const publisher = await model.createConfirmChannel();
  const mailboxChannels = await Promise.all(Array.from({ length: mailboxLaneCount }, () => model.createChannel()));
  const relayQueueChannel = await model.createChannel();
  const link: Link = {
    model,
    publisher,
    mailboxLanes: mailboxChannels.map((channel) => ({ channel, acks: new AckBatcher(channel) })),
    relayQueueChannel,
    relayQueueAcks: new AckBatcher(relayQueueChannel),
    declarer: undefined,
    mailboxDeclarers: Array.from({ length: mailboxDeclarerPoolSize }, () => undefined),
    nextMailboxDeclarer: 0,
    returned: new Set(),
    otherConsumers: [],
    alive: true,
  };
  const named: Array<[string, Channel]> = [['publisher', publisher], ...mailboxChannels.map((c, i): [string, Channel] => [`mailboxes ${i}`, c]), ['relay queues', relayQueueChannel]];
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
  for (const lane of link.mailboxLanes) await lane.channel.prefetch(prefetch);
  await link.relayQueueChannel.prefetch(prefetch);
}

/** The channel for declares and relay queue housekeeping, opened again after a refusal closed it. */
export function declarerChannel(link: Link): Promise<Channel> {
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

/** The next channel of the mailbox declarer pool (round-robin), opened if its slot is empty or was closed by a refusal. */
export function mailboxDeclarerChannel(link: Link): Promise<Channel> {
  const slot = link.nextMailboxDeclarer;
  link.nextMailboxDeclarer = (slot + 1) % link.mailboxDeclarers.length;
  const existing = link.mailboxDeclarers[slot];
  if (existing) return existing;
  const forget = () => {
    if (link.mailboxDeclarers[slot] === opened) link.mailboxDeclarers[slot] = undefined;
  };
  const opened: Promise<Channel> = link.model.createChannel().then((channel) => {
    channel.on('error', () => {});
    channel.on('close', forget);
    return channel;
  });
  opened.catch(forget);
  link.mailboxDeclarers[slot] = opened;
  return opened;
}

/** Forgets the declarer channel if it is `channel` (a refusal just closed it), so the next call opens another. */
export async function dropDeclarer(link: Link, channel: Channel): Promise<void> {
  if (link.declarer && (await link.declarer.catch(() => undefined)) === channel) link.declarer = undefined;
}

/** Closes a dead link's channels; unsettled deliveries go back to their queues. */
export async function closeLinkChannels(link: Link, log: Logger): Promise<void> {
  const declarer = link.declarer ? await link.declarer.catch(() => undefined) : undefined;
  link.declarer = undefined;
  const pool = await Promise.all(link.mailboxDeclarers.map((opened) => opened?.catch(() => undefined)));
  link.mailboxDeclarers.fill(undefined);
  const channels: Channel[] = [link.publisher, ...link.mailboxLanes.map((lane) => lane.channel), link.relayQueueChannel, ...(declarer ? [declarer] : []), ...pool.filter((c) => c !== undefined)];
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
