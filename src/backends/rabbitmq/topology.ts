import type { RetentionConfig } from '../../config/schema.js';
import type { ProfileId } from '../../core/ids.js';

/**
 * Names and arguments of everything the gateway declares on RabbitMQ. Backends that declare a profile's
 * queue themselves must use exactly `mailboxQueueArguments` (RabbitMQ refuses a redeclare with other
 * arguments); the publish library and CLI use these functions, so they always match.
 *
 *   backend ──▶ message_to_user.<profile>      durable mailbox, single active consumer,
 *                │                             max length (drop-head) + TTL + expiry, DLX
 *                ▼ (the one active gateway node relays, then acks)
 *              switchboard.relay (direct) ──routing key = mailbox name──▶ switchboard.node.<nodeId>
 *                                                          (durable, one per gateway node, bound once
 *                                                           per profile joined on that node, x-expires)
 *   retention drops, expired and invalid messages ──▶ switchboard.dead_letter (fanout exchange, named
 *                                                     after the configured dead-letter queue)
 *                ├──▶ switchboard.dead_letter      durable, for a person to inspect (bounded)
 *                └──▶ switchboard.dead_letter.log  consumed by gateway nodes, which log each one
 */
export const relayExchange = 'switchboard.relay';
export const deadLetterInspectionLimit = 100_000;
export const deadLetterLogLimit = 10_000;

export function mailboxQueueName(prefix: string, profile: ProfileId | string): string {
  return `${prefix}${profile}`;
}

/** The dead-letter exchange has the dead-letter queue's name (exchanges and queues are separate namespaces). */
export function deadLetterExchangeName(deadLetterQueue: string): string {
  return deadLetterQueue;
}

export function mailboxQueueArguments(retention: RetentionConfig, deadLetterQueue: string): Record<string, unknown> {
  return {
    'x-single-active-consumer': true,
    'x-max-length': retention.maxLength,
    'x-overflow': 'drop-head',
    'x-message-ttl': retention.messageTtlMs,
    'x-expires': retention.queueExpiresMs,
    'x-dead-letter-exchange': deadLetterExchangeName(deadLetterQueue),
  };
}

export function nodeQueueName(nodeId: string): string {
  return `switchboard.node.${nodeId}`;
}

export function nodeQueueArguments(expiresMs: number): Record<string, unknown> {
  return { 'x-expires': expiresMs };
}

export function deadLetterLogQueueName(deadLetterQueue: string): string {
  return `${deadLetterQueue}.log`;
}
