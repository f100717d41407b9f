import type { DeliveryVerdict } from '../core/notification-broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';

/** Called once per accepted message: no error once its bytes were written out, an error if the socket died first. */
export type WriteCallback = (err?: Error | null) => void;

/**
 * One message on its way to a profile's local sockets, and the rule that settles it with the broker
 * (spec: notify-protocol.md, "Delivery guarantees" and "Acknowledged delivery"):
 * - no ack-mode socket got it: `ack` once the first socket wrote it out, `requeue` if every socket died first;
 * - an ack-mode socket got it: `ack` once every such socket acknowledged it, `requeue` as soon as one of them
 *   closed or left without acknowledging (plain sockets then see it again: at least once);
 * - held for a returning ack-mode client (see ProfileHub's resume window): settled by `release`.
 * Callbacks are always asynchronous, so the counts are complete before the first one runs.
 */
export class PendingDelivery {
  /** Plain sockets whose write has not completed. */
  pendingWrites = 0;
  /** Ack-mode sockets that have not acknowledged. */
  awaitingAcks = 0;
  /** At least one plain socket wrote it out. */
  written = false;
  private held = false;
  private verdict: DeliveryVerdict | undefined;
  private resolve: ((verdict: DeliveryVerdict) => void) | undefined;

  constructor(
    private readonly startedAt: number,
    private readonly metrics: GatewayMetrics | undefined,
  ) {}

  readonly onWritten: WriteCallback = (err) => {
    this.pendingWrites -= 1;
    if (this.verdict) return;
    if (!err && !this.written) {
      this.written = true;
      this.metrics?.deliveryLatency.observe((performance.now() - this.startedAt) / 1000);
    }
    if (this.awaitingAcks > 0 || this.held) return;
    if (!err) this.decide('ack');
    else if (this.pendingWrites === 0) this.decide('requeue');
  };

  readonly onAcknowledged: WriteCallback = (err) => {
    if (this.verdict) return;
    if (err) {
      this.decide('redeliver');
      return;
    }
    this.awaitingAcks -= 1;
    if (this.awaitingAcks > 0 || this.held) return;
    if (!this.written) this.metrics?.deliveryLatency.observe((performance.now() - this.startedAt) / 1000);
    this.decide('ack');
  };

  get settled(): boolean {
    return this.verdict !== undefined;
  }

  /** Keeps the message unsettled, whatever the plain sockets do, until `release`. */
  hold(): void {
    this.held = true;
  }

  release(verdict: DeliveryVerdict): void {
    this.held = false;
    if (!this.verdict) this.decide(verdict);
  }

  settle(resolve: (verdict: DeliveryVerdict) => void): void {
    this.resolve = resolve;
    if (this.verdict) resolve(this.verdict);
  }

  private decide(verdict: DeliveryVerdict): void {
    this.verdict = verdict;
    this.resolve?.(verdict);
  }
}
