import type { Channel } from 'amqplib';
import type { RetentionConfig } from '../../config/schema.js';
import type { ProfileId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { errorText, type Link, mailboxCheckerChannel, mailboxDeclarerChannel } from './amqp-link.js';
import {
  deadLetterExchangeName,
  deadLetterInspectionLimit,
  deadLetterLogLimit,
  deadLetterLogQueueName,
  mailboxQueueArguments,
  mailboxQueueName,
  relayExchange,
} from './topology.js';

/** A publish declares its mailbox again at most this often: it may have expired or been deleted meanwhile. */
const declareCacheMs = 60_000;

/**
 * The profiles' mailboxes on one broker: their names (the one place they are computed for a node), their
 * declares (cached for publishes), and their consumer counts (a declare answers the count; a passive one
 * where the mailbox is known to exist).
 */
export class Mailboxes {
  private readonly declaredAt = new Map<string, number>();

  constructor(private readonly options: { queuePrefix: string; retention: RetentionConfig; deadLetterQueue: string; log: Logger }) {}

  name(profile: ProfileId): string {
    return mailboxQueueName(this.options.queuePrefix, profile);
  }

  /** The profile a mailbox name belongs to (undefined for another queue). */
  profileOf(queue: string): string | undefined {
    return queue.startsWith(this.options.queuePrefix) ? queue.slice(this.options.queuePrefix.length) : undefined;
  }

  /** Makes sure the mailbox exists, declaring it unless that was done in the last minute on this broker. */
  async ensure(link: Link, queue: string): Promise<void> {
    const last = this.declaredAt.get(queue);
    if (last !== undefined && Date.now() - last < declareCacheMs) return;
    await this.declare(link, queue);
  }

  /** Declares the mailbox and answers how many consumers it has (waiting single-active consumers included). */
  consumerCount(link: Link, queue: string): Promise<number> {
    return this.declare(link, queue);
  }

  /**
   * How many consumers a mailbox this node consumes has, by a passive declare: it exists (a consumed queue
   * does not expire), so nothing needs declaring. Rejects if it was deleted meanwhile (its consumer is then
   * cancelled too, and the re-attach declares it again).
   */
  async consumerCountOfConsumed(link: Link, queue: string): Promise<number> {
    const channel = await mailboxCheckerChannel(link);
    return (await channel.checkQueue(queue)).consumerCount;
  }

  /** The mailbox may be gone (deleted by an operator): the next publish declares it again. */
  forget(queue: string): void {
    this.declaredAt.delete(queue);
  }

  /** A new connection: nothing is known to exist any more. */
  forgetAll(): void {
    this.declaredAt.clear();
  }

  private async declare(link: Link, queue: string): Promise<number> {
    const channel = await mailboxDeclarerChannel(link);
    let consumers: number;
    try {
      ({ consumerCount: consumers } = await channel.assertQueue(queue, {
        durable: true,
        arguments: mailboxQueueArguments(this.options.retention, this.options.deadLetterQueue),
      }));
    } catch (err) {
      if ((err as { code?: number }).code === 406) {
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
}

/** Declares the fixed topology every node needs: the relay exchange and the dead-letter exchange and queues. */
export async function declareFixedTopology(channel: Channel, deadLetterQueue: string): Promise<void> {
  await channel.assertExchange(relayExchange, 'direct', { durable: true });
  const deadLetterExchange = deadLetterExchangeName(deadLetterQueue);
  await channel.assertExchange(deadLetterExchange, 'fanout', { durable: true });
  await channel.assertQueue(deadLetterQueue, {
    durable: true,
    arguments: { 'x-max-length': deadLetterInspectionLimit, 'x-overflow': 'drop-head' },
  });
  await channel.bindQueue(deadLetterQueue, deadLetterExchange, '');
  const logQueue = deadLetterLogQueueName(deadLetterQueue);
  await channel.assertQueue(logQueue, { durable: true, arguments: { 'x-max-length': deadLetterLogLimit, 'x-overflow': 'drop-head' } });
  await channel.bindQueue(logQueue, deadLetterExchange, '');
}
