import { AmqpPublisher } from '../backends/rabbitmq/amqp-publisher.js';
import { configSchema, type RetentionConfig } from '../config/schema.js';
import type { NotificationBroker } from '../core/notification-broker.js';
import { HttpGatewayTransport } from './http-gateway-transport.js';
import { NotificationPublisher } from './notification-publisher.js';

export type PublishTarget =
  /** RabbitMQ directly. queuePrefix, deadLetterQueue and retention default to the gateway's defaults and must match the gateways'. */
  | { amqpUrl: string; queuePrefix?: string; deadLetterQueue?: string; retention?: Partial<RetentionConfig>; connectionName?: string }
  /** A gateway's HTTP publish endpoint, with an API key that holds the publish right. */
  | { gatewayUrl: string; apiKey: string; timeoutMs?: number }
  /** A broker this process already runs (e.g. `gateway.broker`). Not closed by the publisher. */
  | { broker: Pick<NotificationBroker, 'publish'> };

/**
 * A NotificationPublisher for a target:
 *
 * ```ts
 * const publisher = connectPublisher({ amqpUrl: process.env.AMQP_URL! });
 * await publisher.publishCommandStatus('alice', { id: commandId, status: 2, body: 'Command completed successfully' });
 * await publisher.close();
 * ```
 */
export function connectPublisher(target: PublishTarget): NotificationPublisher {
  if ('broker' in target) {
    const { broker } = target;
    return new NotificationPublisher({ publish: (profile, body) => broker.publish(profile, body) });
  }
  if ('gatewayUrl' in target) {
    return new NotificationPublisher(new HttpGatewayTransport({ url: target.gatewayUrl, apiKey: target.apiKey, ...(target.timeoutMs !== undefined && { timeoutMs: target.timeoutMs }) }));
  }
  const defaults = configSchema.shape.notify.parse({
    retention: target.retention ?? {},
    ...(target.queuePrefix !== undefined && { queuePrefix: target.queuePrefix }),
    ...(target.deadLetterQueue !== undefined && { deadLetterQueue: target.deadLetterQueue }),
  });
  return new NotificationPublisher(
    new AmqpPublisher({
      url: target.amqpUrl,
      queuePrefix: defaults.queuePrefix,
      retention: defaults.retention,
      deadLetterQueue: defaults.deadLetterQueue,
      ...(target.connectionName !== undefined && { connectionName: target.connectionName }),
    }),
  );
}
