import { createHash } from 'node:crypto';
import type { RetentionConfig } from '../../config/schema.js';
import type { ProfileId } from '../../core/ids.js';

/**
 * Names and arguments of everything the gateway declares on RabbitMQ. Backends that declare a profile's
 * queue themselves must use exactly `mailboxQueueArguments` (RabbitMQ refuses a redeclare with other
 * arguments); the publish library and CLI use these functions, so they always match.
 *
 *   backend ──▶ message_to_user.<profile>      durable mailbox, single active consumer,
 *                │                             max length (drop-head) + TTL + expiry, DLX
 *                ▼ (the one active gateway node: delivers directly while it alone holds the profile;
 *                │  otherwise relays to every holder, itself included, then acks)
 *              switchboard.relay (direct) ──routing key = mailbox name──▶ switchboard.relay.<nodeId>/<profile>
 *                                          (durable, one per (node, profile), declared only once the profile
 *                                           is held by several nodes, own consumer and prefetch, x-expires;
 *                                           a copy waiting longer than its x-message-ttl is dead-lettered
 *                                           back to the mailbox) ──expired──▶ message_to_user.<profile>
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

/** The one relay queue per node of versions before per-profile relay queues; only looked for at start. */
export function nodeQueueName(nodeId: string): string {
  return `switchboard.node.${nodeId}`;
}

const relayQueuePrefix = 'switchboard.relay.';
const maxQueueNameBytes = 255;

/**
 * The relay queue of one node for one profile: `switchboard.relay.<nodeId>/<profile>`, readable in the
 * management UI. Profile ids never contain '/', so the last '/' splits the name and no two (node, profile)
 * pairs share one. When that does not fit RabbitMQ's 255 bytes (long node ids), a SHA-256 digest of the
 * pair instead (no '/', so it cannot meet a readable name). The name is never parsed: the node that
 * consumes a queue knows its profile and mailbox, and an active node delivering local first computes the
 * other holders' queue names from their node ids.
 */
export function relayQueueName(nodeId: string, profile: ProfileId | string): string {
  const readable = `${relayQueuePrefix}${nodeId}/${profile}`;
  if (Buffer.byteLength(readable) <= maxQueueNameBytes) return readable;
  return `${relayQueuePrefix}${createHash('sha256').update(nodeId).update('\0').update(profile).digest('hex')}`;
}

export function isRelayQueueName(queue: string): boolean {
  return queue.startsWith(relayQueuePrefix);
}

/**
 * How long a copy may wait in a relay queue before RabbitMQ dead-letters it back to the mailbox: shorter
 * than the queue's expiry, so copies left in a crashed node's queue are out before the queue is deleted,
 * and as long as possible, because a copy that waits longer behind a live but stalled socket is sent again
 * (keep `nodeQueueExpiresMs` well above two heartbeat intervals, after which a stalled socket is closed).
 */
export function relayCopyTtlMs(expiresMs: number): number {
  return expiresMs - Math.floor(expiresMs / 10);
}

export function relayQueueArguments(expiresMs: number, mailbox: string): Record<string, unknown> {
  return {
    'x-expires': expiresMs,
    'x-message-ttl': relayCopyTtlMs(expiresMs),
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': mailbox,
  };
}

/**
 * What to do with a mailbox message that is a relay copy dead-lettered out of a relay queue (expired):
 * - `redeliver`: it expired in the queue of the node that relayed it, which acknowledged the original
 *   and may have been its only holder (at least once: other holders may get it twice);
 * - `drop`: it expired in another node's queue; the relaying node had its own copy, so the profile got it,
 *   and sending it on would make it bounce through that abandoned queue again;
 * - undefined: not such a copy (an ordinary message).
 * `deaths` is the x-death header (most recent first), `relayedBy` the node id the copy carries.
 */
export function expiredRelayCopy(deaths: unknown, relayedBy: unknown, profile: ProfileId | string): 'redeliver' | 'drop' | undefined {
  if (!Array.isArray(deaths) || typeof relayedBy !== 'string') return undefined;
  const last = deaths[0] as { reason?: unknown; queue?: unknown } | undefined;
  if (last?.reason !== 'expired' || typeof last.queue !== 'string' || !isRelayQueueName(last.queue)) return undefined;
  return last.queue === relayQueueName(relayedBy, profile) ? 'redeliver' : 'drop';
}

export function deadLetterLogQueueName(deadLetterQueue: string): string {
  return `${deadLetterQueue}.log`;
}
