import type { Clock } from '../../core/clock.js';
import type { DriverLogLine } from '../../core/driver-host.js';
import { type ErrorCode, GatewayError, errorCodes, isGatewayError } from '../../core/errors.js';
import { type FleetBus, type FleetRequest, type NodeId, notDelivered, wasNotDelivered } from '../../core/fleet.js';
import type { ModuleId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import type { RedisFleetLink } from './redis-fleet-link.js';

type Envelope =
  | { t: 'q'; id: number; from: NodeId; request: FleetRequest }
  | { t: 'r'; id: number; ok: true; value: unknown }
  | { t: 'r'; id: number; ok: false; code: ErrorCode; message: string; notRun?: true };

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  cancel(): void;
}

/**
 * Requests between nodes over Redis pub/sub: each node listens on `fleet/node/<id>`; a request carries the
 * sender's id and the reply goes to the sender's channel. Pub/sub delivers at most once and keeps nothing,
 * which is what an exec needs (never run twice); PUBLISH answers how many nodes received it, so a request
 * to a node that is gone fails at once instead of at the timeout. Log lines go to `fleet/debug/<module>`.
 */
export class RedisFleetBus implements FleetBus {
  private readonly pending = new Map<number, Pending>();
  private readonly logListeners = new Map<ModuleId, Set<(line: DriverLogLine) => void>>();
  private handler: (request: FleetRequest) => Promise<unknown> = async () => {
    throw new GatewayError('unavailable', 'this node serves no modules yet');
  };
  private nextId = 1;
  private publishFailing = false;

  constructor(
    private readonly link: RedisFleetLink,
    private readonly nodeId: NodeId,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Starts listening on this node's channel. */
  async start(): Promise<void> {
    await this.link.subscribe(this.channelOf(this.nodeId), (message) => this.receive(message));
  }

  async close(): Promise<void> {
    await this.link.unsubscribe(this.channelOf(this.nodeId)).catch(() => {});
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.cancel();
      pending.reject(new GatewayError('unavailable', 'this node is stopping'));
    }
  }

  serve(handler: (request: FleetRequest) => Promise<unknown>): void {
    this.handler = handler;
  }

  request(node: NodeId, request: FleetRequest, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const cancel = this.clock.schedule(timeoutMs, () => {
        if (!this.pending.delete(id)) return;
        reject(new GatewayError('timeout', `node ${node} did not answer within ${timeoutMs} ms`));
      });
      this.pending.set(id, { resolve, reject, cancel });
      const envelope: Envelope = { t: 'q', id, from: this.nodeId, request };
      const { link } = this;
      link
        .run(() => link.cmd.publish(this.channelOf(node), JSON.stringify(envelope)))
        .then((receivers) => {
          if (receivers > 0 || !this.pending.delete(id)) return;
          cancel();
          reject(new GatewayError('unavailable', `node ${node} is not listening`, { cause: notDelivered }));
        })
        .catch((err: unknown) => {
          if (!this.pending.delete(id)) return;
          cancel();
          reject(err instanceof Error ? err : new GatewayError('unavailable', 'fleet: Redis unavailable'));
        });
    });
  }

  publishLog(line: DriverLogLine): void {
    const { link } = this;
    link.run(() => link.cmd.publish(this.logChannel(line.module), JSON.stringify(line))).then(
      () => (this.publishFailing = false),
      (err: unknown) => {
        if (!this.publishFailing) this.log.warn({ module: line.module, err: String(err) }, 'debug line not published');
        this.publishFailing = true;
      },
    );
  }

  async subscribeLog(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void> {
    const own = (line: DriverLogLine) => onLine(line);
    let listeners = this.logListeners.get(module);
    if (!listeners) {
      listeners = new Set();
      this.logListeners.set(module, listeners);
      const set = listeners;
      try {
        await this.link.subscribe(this.logChannel(module), (message) => this.dispatchLine(set, message));
      } catch (err) {
        if (this.logListeners.get(module) === set && set.size === 0) this.logListeners.delete(module);
        throw err;
      }
    }
    listeners.add(own);
    const set = listeners;
    return () => {
      set.delete(own);
      if (set.size > 0 || this.logListeners.get(module) !== set) return;
      this.logListeners.delete(module);
      void this.link.unsubscribe(this.logChannel(module)).catch(() => {});
    };
  }

  private dispatchLine(listeners: ReadonlySet<(line: DriverLogLine) => void>, message: string): void {
    let line: DriverLogLine;
    try {
      line = JSON.parse(message) as DriverLogLine;
    } catch {
      return;
    }
    for (const listener of [...listeners]) {
      try {
        listener(line);
      } catch (err) {
        this.log.error({ err, module: line.module }, 'debug listener threw');
      }
    }
  }

  private receive(message: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      this.log.warn('fleet: unreadable message on this node channel');
      return;
    }
    if (envelope.t === 'r') {
      const pending = this.pending.get(envelope.id);
      if (!pending) return; // answered after its timeout: dropped
      this.pending.delete(envelope.id);
      pending.cancel();
      if (envelope.ok) pending.resolve(envelope.value);
      else {
        const code = errorCodes.includes(envelope.code) ? envelope.code : 'internal';
        pending.reject(new GatewayError(code, String(envelope.message), envelope.notRun ? { cause: notDelivered } : undefined));
      }
      return;
    }
    if (envelope.t === 'q') void this.answer(envelope);
  }

  private async answer(envelope: Extract<Envelope, { t: 'q' }>): Promise<void> {
    let reply: Envelope;
    try {
      reply = { t: 'r', id: envelope.id, ok: true, value: await this.handler(envelope.request) };
    } catch (err) {
      if (!isGatewayError(err)) this.log.error({ err }, 'fleet request failed unexpectedly');
      reply = isGatewayError(err)
        ? { t: 'r', id: envelope.id, ok: false, code: err.code, message: err.message, ...(wasNotDelivered(err) && { notRun: true as const }) }
        : { t: 'r', id: envelope.id, ok: false, code: 'internal', message: 'unexpected failure' };
    }
    const { link } = this;
    await link.run(() => link.cmd.publish(this.channelOf(envelope.from), JSON.stringify(reply))).catch((err: unknown) => {
      this.log.warn({ err: String(err), to: envelope.from }, 'fleet reply not sent');
    });
  }

  private channelOf(node: NodeId): string {
    return this.link.key(`fleet/node/${node}`);
  }

  private logChannel(module: ModuleId): string {
    return this.link.key(`fleet/debug/${module}`);
  }
}
