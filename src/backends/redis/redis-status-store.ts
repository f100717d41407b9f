import { Redis } from 'ioredis';
import type { BackendState } from '../../core/backend-state.js';
import { GatewayError } from '../../core/errors.js';
import type { ModuleId, SystemId } from '../../core/ids.js';
import { systemId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { callWatchers, type StatusStore, type StatusWatcher } from '../../core/status-store.js';

export interface RedisStatusStoreOptions {
  url: string;
  /** Prepended to every key and channel; empty = PlaceOS layout. Lets tests share one Redis. */
  keyPrefix?: string;
  /** Client name shown by CLIENT LIST (suffixed `:cmd` / `:sub`). */
  connectionName?: string;
  log: Logger;
}

interface Channel {
  hash: string;
  field: string;
  watchers: Set<StatusWatcher>;
  subscribed: boolean;
  /** The last value its watchers were given (or found when subscribing), to resync after a cut. */
  last: string | undefined;
  /** Serialises SUBSCRIBE/UNSUBSCRIBE of this channel so a quick unwatch + watch cannot cross. */
  op: Promise<void>;
}

// Compare and set in one step, so "same text publishes nothing" holds with several nodes writing.
const setIfChanged = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1`;
const deleteAndAnnounce = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], 'null')
  return 1
end
return 0`;

/**
 * Status in Redis, PlaceOS layout (spec: control-protocol.md "Redis layout"): hash `status/<module>`,
 * channel `status/<module>/<name>`, hash `system/<sys>` field `<Name>/<index>`, channel `lookup-change`.
 * Two connections per node: commands, and one subscriber multiplexing every watched channel (subscribed
 * on the first watch, unsubscribed after the last). ioredis reconnects with backoff; the store then
 * re-subscribes and reads every watched variable again, handing watchers a value that changed during the
 * cut (Redis pub/sub keeps nothing), so a watcher ends up with the latest value, not every intermediate one.
 * The state is `connecting` until that resync is done.
 * Commands fail fast with GatewayError('unavailable') while disconnected instead of queueing.
 */
export class RedisStatusStore implements StatusStore {
  readonly name = 'state';
  readonly kind = 'redis';
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly channels = new Map<string, Channel>();
  private readonly systemListeners = new Set<(system: SystemId) => void>();
  private readonly stateListeners = new Set<(state: BackendState) => void>();
  private lastState: BackendState = 'down';
  private started = false;
  private closing = false;
  private resyncing = false;
  private lastError: string | undefined;

  constructor(private readonly options: RedisStatusStoreOptions) {
    this.prefix = options.keyPrefix ?? '';
    // CLIENT SETNAME refuses spaces and the like; a node id may hold them.
    const name = (options.connectionName ?? 'switchboard-state').replace(/[^\w.:@-]/g, '_');
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 6), 3_000),
    };
    this.cmd = new Redis(options.url, { ...common, connectionName: `${name}:cmd` });
    this.sub = new Redis(options.url, { ...common, autoResubscribe: false, connectionName: `${name}:sub` });
    this.watchConnection(this.cmd, 'commands');
    this.watchConnection(this.sub, 'subscriber');
    this.sub.on('message', (channel: string, message: string) => this.dispatch(channel, message));
  }

  state(): BackendState {
    if (!this.started || this.closing) return 'down';
    return this.cmd.status === 'ready' && this.sub.status === 'ready' && !this.resyncing ? 'up' : 'connecting';
  }

  /** Called on every state transition (metrics: app.ts trackBackendState counts reconnects). */
  onStateChange(listener: (state: BackendState) => void): () => void {
    const own = (state: BackendState) => listener(state);
    this.stateListeners.add(own);
    return () => this.stateListeners.delete(own);
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect()]);
      await this.sub.subscribe(this.key('lookup-change'));
    } catch (err) {
      this.cmd.disconnect();
      this.sub.disconnect();
      // ioredis rejects with "Connection is closed."; the socket error said why.
      throw new GatewayError('unavailable', `status store: cannot reach Redis (${this.lastError ?? (err as Error).message})`, { cause: err });
    }
    this.started = true;
    this.reportState();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
    this.sub.disconnect();
    this.cmd.disconnect();
    this.channels.clear();
    this.reportState();
  }

  async get(module: ModuleId, name: string): Promise<string | undefined> {
    const value = await this.run(() => this.cmd.hget(this.key(`status/${module}`), name));
    return value ?? undefined;
  }

  async getAll(module: ModuleId): Promise<Record<string, string>> {
    return this.run(() => this.cmd.hgetall(this.key(`status/${module}`)));
  }

  async set(module: ModuleId, name: string, json: string): Promise<void> {
    await this.run(() => this.cmd.eval(setIfChanged, 1, this.key(`status/${module}`), name, json, this.key(`status/${module}/${name}`)));
  }

  async delete(module: ModuleId, name: string): Promise<void> {
    await this.run(() => this.cmd.eval(deleteAndAnnounce, 1, this.key(`status/${module}`), name, this.key(`status/${module}/${name}`)));
  }

  async watch(module: ModuleId, name: string, onChange: StatusWatcher): Promise<() => Promise<void>> {
    const key = this.key(`status/${module}/${name}`);
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { hash: this.key(`status/${module}`), field: name, watchers: new Set(), subscribed: false, last: undefined, op: Promise.resolve() };
      this.channels.set(key, channel);
    }
    const watcher: StatusWatcher = (json) => onChange(json);
    channel.watchers.add(watcher);
    try {
      await this.sync(key, channel);
    } catch (err) {
      channel.watchers.delete(watcher);
      void this.sync(key, channel).catch(() => {});
      throw err;
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      channel.watchers.delete(watcher);
      await this.sync(key, channel).catch((err: unknown) => this.options.log.warn({ err, channel: key }, 'unsubscribe failed'));
    };
  }

  async setSystemModules(system: SystemId, modules: Record<string, ModuleId>): Promise<void> {
    const hash = this.key(`system/${system}`);
    const tx = this.cmd.multi().del(hash);
    if (Object.keys(modules).length > 0) tx.hset(hash, modules);
    tx.publish(this.key('lookup-change'), system);
    await this.run(async () => {
      const results = await tx.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    });
  }

  async lookup(system: SystemId, name: string, index: number): Promise<ModuleId | undefined> {
    const value = await this.run(() => this.cmd.hget(this.key(`system/${system}`), `${name}/${index}`));
    return (value ?? undefined) as ModuleId | undefined;
  }

  onSystemChange(listener: (system: SystemId) => void): () => void {
    const own = (system: SystemId) => listener(system);
    this.systemListeners.add(own);
    return () => this.systemListeners.delete(own);
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** Brings the channel's subscription in line with its watchers; resolves once Redis confirmed it. */
  private sync(key: string, channel: Channel): Promise<void> {
    const next = channel.op.then(async () => {
      const wanted = channel.watchers.size > 0;
      if (wanted && !channel.subscribed) {
        await this.run(() => this.sub.subscribe(key));
        channel.subscribed = true;
        const current = await this.run(() => this.cmd.hget(channel.hash, channel.field));
        if (channel.last === undefined && current !== null) channel.last = current;
      } else if (!wanted && channel.subscribed) {
        if (!this.closing) await this.run(() => this.sub.unsubscribe(key));
        channel.subscribed = false;
      }
      // Forget the entry only when idle, so a watch arriving meanwhile queues behind this operation.
      if (channel.watchers.size === 0 && !channel.subscribed && this.channels.get(key) === channel) this.channels.delete(key);
    });
    channel.op = next.catch(() => {});
    return next;
  }

  /** After the subscriber reconnected: subscribe again, then hand watchers what changed meanwhile. */
  private async resubscribe(): Promise<void> {
    this.resyncing = true;
    this.reportState();
    try {
      const live = [...this.channels].filter(([, channel]) => channel.subscribed && channel.watchers.size > 0);
      for (const [key, channel] of this.channels) {
        if (channel.watchers.size === 0) {
          channel.subscribed = false;
          this.channels.delete(key);
        }
      }
      await this.sub.subscribe(this.key('lookup-change'), ...live.map(([key]) => key));
      for (const [key, channel] of live) {
        const current = await this.cmd.hget(channel.hash, channel.field);
        const json = current ?? (channel.last === undefined ? undefined : 'null');
        if (json !== undefined && json !== channel.last) this.dispatch(key, json);
      }
      this.resyncing = false;
    } catch (err) {
      // The connection went away again; the next 'ready' starts over.
      this.options.log.warn({ err: (err as Error).message }, 'status store resync failed');
      if (this.sub.status === 'ready') this.sub.disconnect(true);
      else this.resyncing = false;
    }
    this.reportState();
  }

  private dispatch(channelName: string, message: string): void {
    if (channelName === this.key('lookup-change')) {
      for (const listener of [...this.systemListeners]) this.call(() => listener(systemId(message)));
      return;
    }
    const channel = this.channels.get(channelName);
    if (!channel) return;
    channel.last = message;
    callWatchers(channel.watchers, message, this.options.log);
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.options.log.error({ err }, 'status listener threw');
    }
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new GatewayError('unavailable', 'status store unavailable', { cause: err });
    }
  }

  private watchConnection(client: Redis, role: string): void {
    let wasReady = false;
    let outage = false;
    client.on('ready', () => {
      if (wasReady) this.options.log.info({ role }, 'redis reconnected');
      if (wasReady && client === this.sub && !this.closing) void this.resubscribe();
      wasReady = true;
      outage = false;
      this.reportState();
    });
    client.on('error', (err: Error) => {
      this.lastError = err.message;
      // ioredis retries on its own; one line per outage is enough.
      if (!outage && !this.closing) this.options.log.warn({ role, err: err.message }, 'redis connection error');
      outage = true;
    });
    client.on('reconnecting', () => this.reportState());
    client.on('close', () => this.reportState());
  }

  private reportState(): void {
    const state = this.state();
    if (state === this.lastState) return;
    this.lastState = state;
    if (state !== 'up' && !this.closing) this.options.log.warn({ state }, 'status store not available');
    for (const listener of [...this.stateListeners]) this.call(() => listener(state));
  }
}
