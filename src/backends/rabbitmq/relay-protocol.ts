import type { ProfileId } from '../../core/ids.js';
import type { DeliveryVerdict } from '../../core/notification-broker.js';
import { expiredRelayCopy } from './topology.js';

/**
 * The node-to-node relay protocol, as AMQP headers on the messages of a mailbox and of the relay queues
 * (design: docs/rabbitmq-design.md). Pure: no channel, no state beyond an id counter, so the wire can be
 * read and tested without a broker.
 */

/** On a relay copy: its id (`<epoch><seq>`), so the relaying node knows its own copies when they come back. */
export const relayHeader = 'x-switchboard-relay';
/** Control messages a node puts in a mailbox (`hello`, `bye`) or a relay queue (`end`); never forwarded. */
export const markerHeader = 'x-switchboard-marker';
/** The node that put a marker, or relayed a copy. */
export const nodeHeader = 'x-switchboard-node';
/** On a relay copy: the relaying node knew other nodes held the profile, so each of them got its own copy. */
export const sharedHeader = 'x-switchboard-shared';

/**
 * On a relay copy that carries several notifications (a batch): how many. The body is then each
 * notification's length (4 bytes, big-endian) followed by its bytes. A batch travels as one message
 * everywhere (relay queues, give-backs, expiry back into the mailbox) and is split only where its
 * notifications are delivered to sockets.
 */
export const batchHeader = 'x-switchboard-batch';

export type MailboxMarker = 'hello' | 'bye';
type Headers = Record<string, unknown> | undefined;

/** Headers of the empty message a node puts in a mailbox on joining (`hello`) or leaving (`bye`) with company. */
export function markerHeaders(marker: MailboxMarker, nodeId: string): Record<string, unknown> {
  return { [markerHeader]: marker, [nodeHeader]: nodeId };
}

/** The marker a mailbox message carries, with the node that put it; undefined for a notification. */
export function readMarker(headers: Headers): { marker: string; node: string } | undefined {
  const marker = headers?.[markerHeader];
  if (marker === undefined) return undefined;
  return { marker: String(marker), node: String(headers?.[nodeHeader] ?? '') };
}

/** Headers of the copy a relaying node publishes: the original's, plus the copy's id and the relaying node. */
export function relayCopyHeaders(original: Headers, relayId: string, nodeId: string, shared: boolean): Record<string, unknown> {
  const headers: Record<string, unknown> = { ...(original ?? {}), [relayHeader]: relayId, [nodeHeader]: nodeId };
  if (shared) headers[sharedHeader] = true;
  return headers;
}

/** The relay id a message carries, if it is a relay copy (or an end marker). */
export function relayIdOf(headers: Headers): string | undefined {
  const id = headers?.[relayHeader];
  return typeof id === 'string' ? id : undefined;
}

/** A copy's headers with the relay's own removed: what goes back into the mailbox. */
export function mailboxHeadersOf(copyHeaders: Headers): Record<string, unknown> {
  const headers = { ...(copyHeaders ?? {}) };
  delete headers[relayHeader];
  delete headers[nodeHeader];
  delete headers[sharedHeader];
  return headers;
}

/**
 * The give-back rule, for a copy nobody on node `nodeId` can take any more (the profile's last local
 * socket left). A copy another node relayed is dropped: that node holds the profile and got its own copy,
 * so sending it back would deliver it twice. So is a copy this node relayed while it knew other holders (a
 * hello, no bye or count since): each of them got its own copy, and one sent back would reach them again,
 * after newer messages. A copy this node relayed while it knew no other holder goes back to the mailbox,
 * as this node may have been its only holder.
 */
export function mayGiveBack(copyHeaders: Headers, nodeId: string): boolean {
  return copyHeaders?.[nodeHeader] === nodeId && copyHeaders[sharedHeader] !== true;
}

/**
 * Headers of the end marker put at a relay queue's tail while emptying it. No node header: should it ever
 * leave the queue (expired), every node drops it as a marker.
 */
export function endMarkerHeaders(endId: string): Record<string, unknown> {
  return { [markerHeader]: 'end', [relayHeader]: endId };
}

/**
 * For a mailbox message that was dead-lettered: `drop` when it is a relay copy that expired in another
 * node's relay queue (the node that relayed it had its own copy), otherwise deliver it (see topology.ts,
 * expiredRelayCopy).
 */
export function expiredCopyToDrop(headers: Headers, profile: ProfileId | string): boolean {
  return headers?.['x-death'] !== undefined && expiredRelayCopy(headers['x-death'], headers[nodeHeader], profile) === 'drop';
}

/**
 * Ids of relay copies and end markers, unique per process: `runId` tells this process's copies from those
 * an earlier run with the same NODE_ID left queued; the epoch changes on every attach, so a node counts as
 * its own only the copies it relayed during its current attach.
 */
export class RelayIds {
  private seq = 0;
  private attaches = 0;

  constructor(
    private readonly nodeId: string,
    readonly runId: string,
  ) {}

  /** The prefix of the ids of the copies relayed during a new attach. */
  newEpoch(): string {
    return `${this.nodeId}:${this.runId}:${(this.attaches++).toString(36)}:`;
  }

  copyId(epoch: string): string {
    return `${epoch}${(this.seq++).toString(36)}`;
  }

  endId(): string {
    return `end:${this.runId}:${(this.seq++).toString(36)}`;
  }
}

/** At most this many notifications, and this many body bytes, in one batch copy. */
export const maxBatchParts = 64;
export const maxBatchBytes = 256 * 1024;

/** A batch copy's body (see batchHeader). */
export function encodeBatch(bodies: readonly Buffer[]): Buffer {
  let size = 0;
  for (const body of bodies) size += 4 + body.length;
  const batch = Buffer.allocUnsafe(size);
  let at = 0;
  for (const body of bodies) {
    batch.writeUInt32BE(body.length, at);
    body.copy(batch, at + 4);
    at += 4 + body.length;
  }
  return batch;
}

/**
 * The notifications a message carries: itself, or a batch's parts (views into `content`, no copies).
 * Undefined when it says it is a batch and its body does not parse as one (a forged or damaged message).
 */
export function notificationsOf(headers: Headers, content: Buffer): Buffer[] | undefined {
  const declared = headers?.[batchHeader];
  if (declared === undefined) return [content];
  if (typeof declared !== 'number' || !Number.isInteger(declared) || declared < 1) return undefined;
  const parts: Buffer[] = [];
  let at = 0;
  while (at < content.length) {
    if (at + 4 > content.length) return undefined;
    const length = content.readUInt32BE(at);
    if (at + 4 + length > content.length) return undefined;
    parts.push(content.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return parts.length === declared ? parts : undefined;
}

/** How many notifications a message carries, without reading its body (1 unless it is a batch). */
export function notificationCount(headers: Headers): number {
  const declared = headers?.[batchHeader];
  return typeof declared === 'number' && Number.isInteger(declared) && declared > 1 ? declared : 1;
}

/** The verdict for a batch from its parts' verdicts: the strongest "not done" wins. */
export function batchVerdict(verdicts: readonly DeliveryVerdict[]): DeliveryVerdict {
  if (verdicts.includes('redeliver')) return 'redeliver';
  if (verdicts.includes('requeue')) return 'requeue';
  return 'ack';
}
