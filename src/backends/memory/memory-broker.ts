import type { BackendState } from '../../core/backend-state.js';
import type { Clock } from '../../core/clock.js';
import type { ProfileId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { BrokerSubscription, DeliveryHandler, DeliveryVerdict, NotificationBroker } from '../../core/notification-broker.js';
import type { RetentionConfig } from '../../config/schema.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { checkNotification } from '../../protocol/notify.js';

interface Waiting {
  body: Buffer;
  publishedAt: number;
  /** Publish order, so a message handed back (requeued late) goes back to its place. */
  seq: number;
}

interface Mailbox {
  messages: Waiting[];
  handler: DeliveryHandler | undefined;
  draining: boolean;
  /** Handed to the handler, verdict not settled yet: at most `prefetch`, like RabbitMQ's unacked window. */
  inFlight: number;
  lastUsedAt: number;
}

export interface DeadLetter {
  profileId: ProfileId;
  reason: string;
  body: Buffer;
  at: number;
}

const deadLettersKept = 1_000;

/**
 * The embedded broker: one process, the semantics of the RabbitMQ one (same contract suite).
 * Single-node limit: messages live in this process's memory and are lost when it stops; another gateway
 * process cannot see them. Dead letters are logged and the last 1,000 kept for `deadLetters()`.
 */
export class MemoryBroker implements NotificationBroker {
  readonly name = 'broker';
  readonly kind = 'memory';
  private readonly mailboxes = new Map<ProfileId, Mailbox>();
  private readonly dead: DeadLetter[] = [];
  private cancelSweep: (() => void) | undefined;
  private running = false;
  private nextSeq = 0;

  constructor(
    private readonly retention: RetentionConfig,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics?: GatewayMetrics,
    /** Unsettled deliveries per profile (config notify.prefetch): bounds what sits in socket buffers. */
    private readonly prefetch = 500,
  ) {}

  state(): BackendState {
    return this.running ? 'up' : 'down';
  }

  onStateChange(): () => void {
    return () => {};
  }

  async start(): Promise<void> {
    this.running = true;
    this.scheduleSweep();
  }

  async close(): Promise<void> {
    this.running = false;
    this.cancelSweep?.();
    for (const mailbox of this.mailboxes.values()) mailbox.handler = undefined;
  }

  async subscribe(profile: ProfileId, onDelivery: DeliveryHandler): Promise<BrokerSubscription> {
    const mailbox = this.mailbox(profile);
    if (mailbox.handler) throw new Error(`profile ${profile} is already subscribed on this node`);
    mailbox.handler = onDelivery;
    // Deliver what waited after the caller has seen the subscription resolve, as a network broker would.
    setImmediate(() => this.drain(profile, mailbox));
    return {
      unsubscribe: async () => {
        if (mailbox.handler === onDelivery) {
          mailbox.handler = undefined;
          mailbox.lastUsedAt = this.clock.now();
        }
      },
    };
  }

  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    if (!this.running) throw new Error('memory broker is not running');
    const mailbox = this.mailbox(profile);
    mailbox.messages.push({ body, publishedAt: this.clock.now(), seq: this.nextSeq++ });
    this.drain(profile, mailbox);
    // The cap counts what waits, after a subscriber took what it could: RabbitMQ's x-max-length counts
    // ready messages only, so a message a subscriber can take at once is never dropped (contract suite).
    if (mailbox.messages.length > this.retention.maxLength) {
      mailbox.messages.shift();
      this.dropped(profile, 'maxlen', 1);
    }
  }

  /** The newest dead letters, oldest first: what a person inspects in this mode. */
  deadLetters(): readonly DeadLetter[] {
    return this.dead;
  }

  private mailbox(profile: ProfileId): Mailbox {
    let mailbox = this.mailboxes.get(profile);
    if (!mailbox) {
      mailbox = { messages: [], handler: undefined, draining: false, inFlight: 0, lastUsedAt: this.clock.now() };
      this.mailboxes.set(profile, mailbox);
    }
    return mailbox;
  }

  private drain(profile: ProfileId, mailbox: Mailbox): void {
    if (mailbox.draining) return;
    mailbox.draining = true;
    try {
      this.expireOld(profile, mailbox);
      while (mailbox.handler && mailbox.messages.length > 0 && mailbox.inFlight < this.prefetch) {
        const next = mailbox.messages[0]!;
        const check = checkNotification(next.body);
        if (!check.ok) {
          mailbox.messages.shift();
          this.deadLetter(profile, check.reason, next.body);
          continue;
        }
        this.metrics?.messagesReceived.inc();
        const verdict = mailbox.handler(next.body);
        if (verdict === 'requeue') break;
        mailbox.messages.shift();
        if (verdict === 'reject') this.deadLetter(profile, 'rejected by the gateway', next.body);
        // An asynchronous verdict settles once the bytes are written (or the sockets died): until then the
        // message is in flight, and a late `requeue` puts it back in its place for the next delivery.
        if (typeof verdict === 'object') {
          mailbox.inFlight += 1;
          void verdict.then((late) => {
            mailbox.inFlight -= 1;
            this.settleLate(profile, mailbox, next, late);
          });
        }
      }
      mailbox.lastUsedAt = this.clock.now();
    } finally {
      mailbox.draining = false;
    }
  }

  private settleLate(profile: ProfileId, mailbox: Mailbox, message: Waiting, verdict: DeliveryVerdict): void {
    if (verdict === 'reject') this.deadLetter(profile, 'rejected by the gateway', message.body);
    // One node holds the profile here, so a redelivery is a requeue.
    if (verdict === 'ack' || verdict === 'reject') return this.drain(profile, mailbox);
    const { messages } = mailbox;
    let at = 0;
    while (at < messages.length && messages[at]!.seq < message.seq) at += 1;
    messages.splice(at, 0, message);
    // Redeliver on a later turn: a handler that still has no live socket answers `requeue` synchronously,
    // which stops the drain, so this cannot spin.
    setImmediate(() => this.drain(profile, mailbox));
  }

  private expireOld(profile: ProfileId, mailbox: Mailbox): void {
    const oldest = this.clock.now() - this.retention.messageTtlMs;
    let expired = 0;
    while (mailbox.messages.length > 0 && mailbox.messages[0]!.publishedAt <= oldest) {
      mailbox.messages.shift();
      expired += 1;
    }
    if (expired > 0) this.dropped(profile, 'expired', expired);
  }

  private dropped(profile: ProfileId, reason: 'maxlen' | 'expired', count: number): void {
    this.metrics?.messagesDroppedByRetention.inc({ reason }, count);
    this.log.warn({ profileId: profile, reason, count }, 'retention policy dropped waiting messages');
  }

  private deadLetter(profile: ProfileId, reason: string, body: Buffer): void {
    this.dead.push({ profileId: profile, reason, body, at: this.clock.now() });
    if (this.dead.length > deadLettersKept) this.dead.shift();
    this.metrics?.messagesDeadLettered.inc();
    this.log.warn({ profileId: profile, reason, bytes: body.length }, 'message dead-lettered: not a valid notification');
  }

  /** Forgets abandoned mailboxes (nobody subscribed for queueExpiresMs) and expires old messages. */
  private scheduleSweep(): void {
    const everyMs = Math.min(this.retention.queueExpiresMs, 60_000);
    this.cancelSweep = this.clock.schedule(everyMs, () => {
      const cutoff = this.clock.now() - this.retention.queueExpiresMs;
      for (const [profile, mailbox] of this.mailboxes) {
        if (mailbox.handler) continue;
        this.expireOld(profile, mailbox);
        if (mailbox.lastUsedAt <= cutoff) {
          if (mailbox.messages.length > 0) this.dropped(profile, 'expired', mailbox.messages.length);
          this.mailboxes.delete(profile);
        }
      }
      if (this.running) this.scheduleSweep();
    });
  }
}
