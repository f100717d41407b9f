import { Redis } from 'ioredis';
import type { BackendHealth, BackendState } from '../../core/backend-state.js';
import { GatewayError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

export interface RedisFleetLinkOptions {
  url: string;
  /** Prepended to every key and channel (control.redisKeyPrefix). */
  keyPrefix: string;
  /** Client name shown by CLIENT LIST (suffixed `:fleet` / `:fleet-sub`). */
  connectionName: string;
  /**
   * A command without an answer after this long fails, so a stalled connection (no RST, no bytes) is
   * noticed within one heartbeat instead of at the kernel's TCP timeout.
   */
  commandTimeoutMs: number;
  log: Logger;
}

/**
 * The fleet's two Redis connections, shared by membership, leases and the bus: one for commands, one
 * subscriber multiplexing the node's channels (re-subscribed by ioredis after a reconnect). Commands
 * fail fast while disconnected (no offline queue): a lease renewal must fail, not wait.
 */
export class RedisFleetLink implements BackendHealth {
  readonly name = 'fleet';
  readonly kind = 'redis';
  readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, (message: string) => void>();
  private started = false;
  private closing = false;

  constructor(private readonly options: RedisFleetLinkOptions) {
    const name = options.connectionName.replace(/[^\w.:@-]/g, '_');
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 1_000),
    };
    this.cmd = new Redis(options.url, { ...common, commandTimeout: options.commandTimeoutMs, connectionName: `${name}:fleet` });
    this.sub = new Redis(options.url, { ...common, connectionName: `${name}:fleet-sub` });
    for (const [client, role] of [
      [this.cmd, 'fleet commands'],
      [this.sub, 'fleet subscriber'],
    ] as const) {
      let outage = false;
      client.on('error', (err: Error) => {
        if (!outage && !this.closing) options.log.warn({ role, err: err.message }, 'redis connection error');
        outage = true;
      });
      client.on('ready', () => (outage = false));
    }
    this.sub.on('message', (channel: string, message: string) => this.handlers.get(channel)?.(message));
  }

  state(): BackendState {
    if (!this.started || this.closing) return 'down';
    return this.cmd.status === 'ready' && this.sub.status === 'ready' ? 'up' : 'connecting';
  }

  key(name: string): string {
    return `${this.options.keyPrefix}${name}`;
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
    } catch (err) {
      this.cmd.disconnect();
      this.sub.disconnect();
      throw new GatewayError('unavailable', `fleet: cannot reach Redis (${(err as Error).message})`, { cause: err });
    }
    this.started = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
    this.sub.disconnect();
    this.cmd.disconnect();
  }

  /** Resolves once Redis confirmed the subscription; one handler per channel. */
  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    this.handlers.set(channel, handler);
    await this.run(() => this.sub.subscribe(channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    if (!this.closing && this.sub.status === 'ready') await this.run(() => this.sub.unsubscribe(channel));
  }

  /** Runs a command; any failure becomes GatewayError('unavailable'). */
  async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new GatewayError('unavailable', 'fleet: Redis unavailable', { cause: err });
    }
  }
}
