import type { Clock } from '../core/clock.js';
import type { Connection, Session } from '../core/connection.js';
import { GatewayError, isGatewayError } from '../core/errors.js';
import type { ProfileId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { TokenGrant, TokenVerifier } from '../core/token-verifier.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { notifyStatusByCode } from '../protocol/notify-errors.js';
import {
  bareAckSeq,
  expiredMessage,
  formatNotifyReply,
  joinedMessage,
  leftMessage,
  type NotifyRequest,
  parseNotifyRequest,
} from '../protocol/notify.js';
import type { ProfileHub, ProfileSubscriber, WriteCallback } from './profile-hub.js';
import { RateLimiter } from '../core/rate-limiter.js';
import { AckWindow } from './ack-window.js';

export interface NotifySessionOptions {
  joinDeadlineMs: number;
  tokenRevalidateMs: number;
  requestsPerSecond: number;
  /** Unacknowledged frames per ack-mode socket. */
  ackWindow: number;
  /** An ack-mode socket that acknowledges nothing for this long while frames wait is closed with 4008. */
  ackTimeoutMs: number;
}

/** What every session of the route shares (one object for all sockets: it is per-socket memory otherwise). */
export interface NotifySessionDeps {
  hub: ProfileHub;
  verifier: TokenVerifier;
  /** False while the broker is unreachable: joins answer 503. */
  brokerAvailable: () => boolean;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  options: NotifySessionOptions;
}

interface Joined {
  profileId: ProfileId;
  token: string;
  /** The expiry last reported for the token; kept when a revalidation cannot reach the token service. */
  expiresAt?: number;
  cancelExpiry: () => void;
  cancelRevalidate: () => void;
}

const noop = () => {};

/** Close code for a socket that did not join in time (spec: "Connecting"). */
export const joinDeadlineCloseCode = 1008;
/** Close code for an ack-mode socket that stopped acknowledging (spec: "Acknowledged delivery"). */
export const ackTimeoutCloseCode = 4008;

/**
 * One notification-channel socket (spec: notify-protocol.md). Requests are handled one at a time in arrival
 * order, so a join and a leave sent back to back cannot overtake each other.
 * Messages that arrive between the broker subscription and the join reply are held and written right
 * after the reply, so a client always sees its 200 before the first notification.
 */
export class NotifySession implements Session, ProfileSubscriber {
  private joined: Joined | undefined;
  /** Set while joined in ack mode (spec: "Acknowledged delivery"); a new one, from seq 1, per join. */
  private ackWindow: AckWindow | undefined;
  private pendingJoinReply: Array<{ body: Buffer; onWritten: WriteCallback }> | undefined;
  private cancelJoinDeadline: (() => void) | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly limiter: RateLimiter;
  private refusedInARow = 0;
  private garbageInARow = 0;

  constructor(
    private readonly deps: NotifySessionDeps,
    private readonly connection: Connection,
  ) {
    this.limiter = new RateLimiter(deps.options.requestsPerSecond, deps.options.requestsPerSecond * 2, deps.clock);
    this.armJoinDeadline();
  }

  get acknowledges(): boolean {
    return this.ackWindow !== undefined;
  }

  onText(text: string): void {
    // Every frame counts against the limit, a ping or a malformed one too: none is free to send in bulk.
    // An ack that releases frames is the exception: it is flow control, bounded by the frames sent.
    if (text === 'ping') {
      if (this.admit()) this.connection.send('pong');
      return;
    }
    const bareSeq = bareAckSeq(text);
    if (bareSeq !== undefined && this.acknowledgeFrames(bareSeq)) return;
    const parsed = parseNotifyRequest(text);
    if (bareSeq === undefined && parsed.ok && parsed.request.action === 'ack' && this.acknowledgeFrames(parsed.request.seq!)) return;
    if (!this.admit()) {
      if (!parsed.ok) this.garbageOverLimit();
      this.reply(parsed.ok ? parsed.request.correlationId : parsed.correlationId, 429, 'Too many requests.');
      return;
    }
    if (!parsed.ok) {
      this.deps.metrics.badFrames.inc({ channel: 'notify' });
      this.note('info', { reason: parsed.message }, 'bad request');
      this.reply(parsed.correlationId, 400, parsed.message);
      return;
    }
    if (parsed.request.action === 'ack') {
      this.refuseAck(parsed.request);
      return;
    }
    this.queue = this.queue.then(() => this.handle(parsed.request));
  }

  /** True when the ack released frames; false when it needs an answer (see refuseAck) or did nothing. */
  private acknowledgeFrames(seq: number): boolean {
    const window = this.ackWindow;
    if (!window || window.unacknowledged === 0) return false;
    const before = window.unacknowledged;
    return window.acknowledge(seq) === 'ok' && window.unacknowledged < before;
  }

  /** An ack that released nothing: a repeat costs a rate-limit token and no answer; a wrong one a 400/409. */
  private refuseAck(request: NotifyRequest): void {
    const window = this.ackWindow;
    if (!window) {
      this.reply(request.correlationId, 409, 'Not joined with acknowledged delivery.', this.joined?.profileId);
    } else if (window.acknowledge(request.seq!) === 'unsent') {
      this.deps.metrics.badFrames.inc({ channel: 'notify' });
      this.note('info', { seq: request.seq }, 'ack for a frame not sent');
      this.reply(request.correlationId, 400, `Frame ${request.seq} was not sent yet.`, this.joined?.profileId);
    }
  }

  onBinary(): void {
    if (!this.admit()) {
      this.garbageOverLimit();
      return;
    }
    this.deps.metrics.badFrames.inc({ channel: 'notify' });
    this.note('info', {}, 'binary frame refused');
    this.reply(undefined, 400, 'Binary frames are not supported; send JSON text frames.');
  }

  /** Takes a token for a frame; a run of refusals is logged once. */
  private admit(): boolean {
    if (this.limiter.take()) {
      this.refusedInARow = 0;
      this.garbageInARow = 0;
      return true;
    }
    this.refusedInARow += 1;
    if (this.refusedInARow === 1) this.note('warn', {}, 'rate limited');
    return false;
  }

  /** A socket that goes on sending garbage past its rate, a burst's worth of it, is closed with 1008. */
  private garbageOverLimit(): void {
    this.garbageInARow += 1;
    if (this.garbageInARow <= this.deps.options.requestsPerSecond * 2) return;
    this.note('warn', { refused: this.refusedInARow }, 'closed: kept sending malformed frames over its rate limit');
    this.connection.close(1008, 'too many malformed frames');
  }

  onClose(): void {
    this.closed = true;
    this.cancelJoinDeadline?.();
    this.failHeld();
    if (this.joined) this.leaveChannel('closed');
  }

  deliver(body: Buffer, onWritten: WriteCallback): boolean {
    if (this.closed) return false;
    if (this.pendingJoinReply) {
      this.pendingJoinReply.push({ body, onWritten });
      return true;
    }
    if (this.ackWindow) return this.ackWindow.offer(body, onWritten);
    return this.write(body, onWritten);
  }

  private write(body: Buffer, onWritten?: WriteCallback): boolean {
    if (!this.connection.send(body, onWritten)) return false;
    this.deps.metrics.messagesWritten.inc();
    return true;
  }

  /** Messages held for the join reply that will never be written: the broker keeps them. */
  private failHeld(): void {
    const held = this.pendingJoinReply;
    this.pendingJoinReply = undefined;
    if (!held) return;
    const gone = new Error('socket closed before the join completed');
    for (const { onWritten } of held) onWritten(gone);
  }

  private async handle(request: NotifyRequest): Promise<void> {
    if (this.closed) return;
    try {
      if (request.action === 'joinChannel') await this.join(request);
      else await this.leave(request);
    } catch (err) {
      const status = isGatewayError(err) ? notifyStatusByCode[err.code] : 500;
      if (!isGatewayError(err)) this.note('error', { err }, 'unexpected failure handling request');
      else this.note('info', { action: request.action, status, reason: err.message }, 'request refused');
      if (request.action === 'joinChannel') this.deps.metrics.joinFailures.inc({ reason: String(status) });
      this.reply(request.correlationId, status, isGatewayError(err) ? err.message : 'Internal error.', this.joined?.profileId);
    }
  }

  private async join(request: NotifyRequest): Promise<void> {
    const token = request.authorizationToken!;
    if (!this.deps.brokerAvailable()) throw new GatewayError('unavailable', 'The message broker is unavailable; try again.');
    const grant = await this.deps.verifier.verify(token);
    if (this.closed) return;
    if (grant.expiresAt !== undefined && grant.expiresAt <= this.deps.clock.now()) {
      throw new GatewayError('unauthorized', 'Authorization token expired.');
    }
    if (this.joined) {
      if (this.joined.profileId !== grant.profileId) {
        throw new GatewayError('conflict', 'Already joined to another profile channel; leave it first.');
      }
      this.adoptToken(token, grant);
      this.replyJoined(request.correlationId, grant.profileId);
      return;
    }
    if (request.ack) this.ackWindow = this.newAckWindow();
    this.pendingJoinReply = [];
    try {
      await this.deps.hub.join(grant.profileId, this);
    } catch (err) {
      this.failHeld();
      this.ackWindow = undefined;
      throw isGatewayError(err) ? err : new GatewayError('unavailable', 'The message broker is unavailable; try again.', { cause: err });
    }
    if (this.closed) {
      this.failHeld();
      this.deps.hub.leave(grant.profileId, this);
      this.ackWindow = undefined;
      return;
    }
    this.cancelJoinDeadline?.();
    this.cancelJoinDeadline = undefined;
    this.joined = { profileId: grant.profileId, token, cancelExpiry: noop, cancelRevalidate: noop };
    this.adoptToken(token, grant);
    this.deps.metrics.joins.inc();
    this.note('info', { profileId: grant.profileId, ...(this.ackWindow && { ack: true }) }, 'joined');
    this.replyJoined(request.correlationId, grant.profileId);
    const held = this.pendingJoinReply ?? [];
    this.pendingJoinReply = undefined;
    for (const { body, onWritten } of held) {
      if (!this.deliver(body, onWritten)) onWritten(new Error('socket closed before the join completed'));
    }
  }

  private newAckWindow(): AckWindow {
    const { metrics, options, clock } = this.deps;
    return new AckWindow(
      { size: options.ackWindow, timeoutMs: options.ackTimeoutMs, clock },
      {
        send: (frame) => this.write(frame),
        onUnackedChange: (delta) => metrics.unackedFrames.inc(delta),
        onTimeout: () => {
          metrics.ackTimeouts.inc();
          this.note('warn', { profileId: this.joined?.profileId }, 'closed: acknowledged nothing within notify.ackTimeoutMs');
          this.connection.close(ackTimeoutCloseCode, 'ack timeout');
        },
      },
    );
  }

  private async leave(request: NotifyRequest): Promise<void> {
    const joined = this.joined;
    if (!joined) throw new GatewayError('conflict', 'Not joined to a profile channel.');
    let named: string | undefined = request.channelId;
    if (named === undefined && request.authorizationToken !== undefined) {
      named = request.authorizationToken === joined.token ? joined.profileId : (await this.deps.verifier.verify(request.authorizationToken)).profileId;
    }
    if (this.joined !== joined) throw new GatewayError('conflict', 'Not joined to a profile channel.');
    if (named !== joined.profileId) throw new GatewayError('forbidden', "That is another profile's channel.");
    this.leaveChannel('request');
    this.reply(request.correlationId, 200, leftMessage, joined.profileId);
  }

  /** Schedules expiry and periodic revalidation for the token now in use. */
  private adoptToken(token: string, grant: TokenGrant): void {
    const joined = this.joined!;
    joined.cancelExpiry();
    joined.cancelRevalidate();
    joined.token = token;
    joined.expiresAt = grant.expiresAt;
    joined.cancelExpiry =
      grant.expiresAt === undefined
        ? noop
        : this.deps.clock.schedule(grant.expiresAt - this.deps.clock.now(), () => this.expire('expired'));
    joined.cancelRevalidate = this.deps.clock.schedule(this.deps.options.tokenRevalidateMs, () => {
      this.queue = this.queue.then(() => this.revalidate(joined));
    });
  }

  private async revalidate(joined: Joined): Promise<void> {
    if (this.joined !== joined) return;
    try {
      const grant = await this.deps.verifier.verify(joined.token);
      if (this.joined !== joined) return;
      if (grant.profileId !== joined.profileId) this.expire('revoked');
      else this.adoptToken(joined.token, grant);
    } catch (err) {
      if (this.joined !== joined) return;
      if (isGatewayError(err) && err.code === 'unauthorized') {
        this.expire('revoked');
        return;
      }
      // The token service is down: keep the channel (the token was valid) and try again later.
      this.note('warn', { profileId: joined.profileId, reason: isGatewayError(err) ? err.message : 'unexpected' }, 'token revalidation failed');
      this.adoptToken(joined.token, { profileId: joined.profileId, ...(joined.expiresAt !== undefined && { expiresAt: joined.expiresAt }) });
    }
  }

  private expire(cause: 'expired' | 'revoked'): void {
    const joined = this.joined;
    if (!joined) return;
    this.leaveChannel(cause);
    this.reply(undefined, 401, expiredMessage, joined.profileId);
  }

  private leaveChannel(cause: 'request' | 'expired' | 'revoked' | 'closed'): void {
    const joined = this.joined!;
    this.joined = undefined;
    joined.cancelExpiry();
    joined.cancelRevalidate();
    // The hub hears of the leave first, so it waits for a returning ack-mode client before the messages
    // this socket did not acknowledge come back from the broker.
    this.deps.hub.leave(joined.profileId, this, cause === 'closed');
    const window = this.ackWindow;
    this.ackWindow = undefined;
    const requeued = window?.fail(new Error(`socket ${cause === 'closed' ? 'closed' : 'left'} without acknowledging`)) ?? 0;
    if (requeued > 0) this.deps.metrics.unackedRequeued.inc(requeued);
    this.deps.metrics.leaves.inc({ cause });
    this.note('info', { profileId: joined.profileId, cause }, 'left');
    if (!this.closed) this.armJoinDeadline();
  }

  private armJoinDeadline(): void {
    this.cancelJoinDeadline?.();
    this.cancelJoinDeadline = this.deps.clock.schedule(this.deps.options.joinDeadlineMs, () => {
      if (this.joined || this.closed) return;
      this.note('info', {}, 'join deadline passed; closing');
      this.connection.close(joinDeadlineCloseCode, 'join deadline exceeded');
    });
  }

  /** Logs with the connection id; no child logger per socket, as every idle socket would keep one. */
  private note(level: 'info' | 'warn' | 'error', fields: object, message: string): void {
    this.deps.log[level]({ conn: this.connection.id, ...fields }, message);
  }

  private replyJoined(correlationId: string | undefined, channelId: ProfileId): void {
    if (!this.connection.isOpen) return;
    const data = { channelId, message: joinedMessage, ...(this.ackWindow && { ack: true as const }) };
    this.connection.send(formatNotifyReply({ ...(correlationId !== undefined && { correlationId }), status: 200, data }));
  }

  private reply(correlationId: string | undefined, status: number, message: string, channelId?: ProfileId): void {
    if (!this.connection.isOpen) return;
    this.connection.send(
      formatNotifyReply({
        ...(correlationId !== undefined && { correlationId }),
        status,
        data: { ...(channelId !== undefined && { channelId }), message },
      }),
    );
  }
}
