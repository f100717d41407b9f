import * as amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { RetentionConfig } from '../../config/schema.js';
import { GatewayError } from '../../core/errors.js';
import type { ProfileId } from '../../core/ids.js';
import type { PublishTransport } from '../../publish/notification-publisher.js';
import { amqpSocketOptions, confirmPublish } from './amqp-link.js';
import { deadLetterExchangeName, mailboxQueueArguments, mailboxQueueName } from './topology.js';

export interface AmqpPublisherOptions {
  url: string;
  /** Must match the gateways' notify.queuePrefix. */
  queuePrefix: string;
  /** Must match the gateways' notify.retention: RabbitMQ refuses a mailbox redeclared with other arguments. */
  retention: RetentionConfig;
  /** Must match the gateways' notify.deadLetterQueue (it names the mailbox's dead-letter exchange). */
  deadLetterQueue: string;
  /** Shown as the connection's name in the RabbitMQ management UI and `rabbitmqctl list_connections`. */
  connectionName?: string;
  /** Connect and confirm timeout. */
  timeoutMs?: number;
}

/**
 * Publishes notifications straight to RabbitMQ the way the broker contract says a backend does: a
 * persistent message to the durable mailbox `message_to_user.<profile>` on the default exchange, waiting
 * for the publisher confirm. It shares the broker's connection options and confirmed publish
 * (amqp-link.ts) but not its link: it consumes nothing (no relay queue, no dead-letter log consumer), so a
 * backend or the CLI never takes messages meant for gateway nodes. The mailbox is declared with the
 * gateways' own arguments (topology.ts), so it exists (and keeps what is published) even before any
 * gateway has seen the profile. Connects on first use; after a failure the next publish reconnects.
 */
export class AmqpPublisher implements PublishTransport {
  private link: Promise<{ model: ChannelModel; channel: ConfirmChannel }> | undefined;
  private readonly declared = new Set<string>();

  constructor(private readonly options: AmqpPublisherOptions) {}

  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    const queue = mailboxQueueName(this.options.queuePrefix, profile);
    try {
      const { channel } = await this.connect();
      if (!this.declared.has(queue)) {
        await channel.assertQueue(queue, { durable: true, arguments: mailboxQueueArguments(this.options.retention, this.options.deadLetterQueue) });
        this.declared.add(queue);
      }
      await this.withTimeout(confirmPublish(channel, '', queue, body, { persistent: true, contentType: 'application/json' }));
    } catch (err) {
      await this.reset();
      if ((err as { code?: number }).code === 406) {
        throw new GatewayError(
          'unavailable',
          `queue ${queue} exists with other arguments: set the same notify.retention, notify.queuePrefix and notify.deadLetterQueue as the gateways`,
          { cause: err },
        );
      }
      throw new GatewayError('unavailable', `RabbitMQ is unavailable: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    if (link) await link.then(({ model }) => model.close()).catch(() => {});
  }

  private connect(): Promise<{ model: ChannelModel; channel: ConfirmChannel }> {
    this.link ??= (async () => {
      const model = await this.withTimeout(
        amqp.connect(this.options.url, amqpSocketOptions(this.options.connectionName ?? 'switchboard publisher')),
      );
      model.on('error', () => {}); // surfaced through the failing publish instead
      model.on('close', () => {
        this.link = undefined;
        this.declared.clear();
      });
      const channel = await model.createConfirmChannel();
      channel.on('error', () => {});
      await channel.assertExchange(deadLetterExchangeName(this.options.deadLetterQueue), 'fanout', { durable: true });
      return { model, channel };
    })();
    return this.link;
  }

  private async reset(): Promise<void> {
    this.declared.clear();
    await this.close();
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    let timer: NodeJS.Timeout;
    return Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }
}
