import type { ConsumeMessage } from 'amqplib';
import type { Logger } from '../../core/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { Link } from './amqp-link.js';
import type { Mailboxes } from './mailboxes.js';
import { deadLetterLogQueueName } from './topology.js';

/**
 * Consumes `<deadLetterQueue>.log` on the link, logging each dead-lettered message once across the fleet
 * (the nodes' consumers compete for the queue). On relay queue lane 0; the consumer's tag joins the link's
 * other consumers.
 */
export async function consumeDeadLetterLog(
  link: Link,
  options: { deadLetterQueue: string; mailboxes: Mailboxes; log: Logger; metrics?: GatewayMetrics },
): Promise<void> {
  const { log, metrics, deadLetterQueue, mailboxes } = options;
  const lane = link.relayQueueLanes[0]!;
  const onMessage = (msg: ConsumeMessage | null) => {
    if (msg === null) return;
    const deaths = (msg.properties.headers?.['x-death'] as Array<{ reason?: string; queue?: string }> | undefined) ?? [];
    const first = deaths[deaths.length - 1] ?? deaths[0];
    const reason = String(first?.reason ?? 'unknown');
    const queue = String(first?.queue ?? msg.properties.headers?.['x-first-death-queue'] ?? 'unknown');
    const profileId = mailboxes.profileOf(queue);
    if (reason === 'maxlen' || reason === 'expired') {
      metrics?.messagesDroppedByRetention.inc({ reason });
      log.warn({ profileId, queue, reason, deadLetterQueue }, 'retention policy dropped a waiting message');
    } else {
      log.warn({ profileId, queue, reason, deadLetterQueue }, 'message dead-lettered');
    }
    lane.acks.ack(msg);
  };
  const { consumerTag } = await lane.channel.consume(deadLetterLogQueueName(deadLetterQueue), lane.acks.tracking(onMessage));
  link.otherConsumers.push(consumerTag);
}
