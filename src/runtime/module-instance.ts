import type { Clock } from '../core/clock.js';
import type { DriverLogLine, FunctionDescription, LogLevel } from '../core/driver-host.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import type { ModuleRecord } from '../core/system-directory.js';
import { describeFunction } from './arguments.js';
import type {
  DeviceAddress,
  DriverDefinition,
  DriverInstance,
  DriverLogger,
  MethodDefinition,
  ModuleContext,
  StatusVariables,
} from '../driver-api/driver-api.js';

const minIntervalMs = 10;

export interface ModuleInstanceDeps {
  store: Pick<StatusStore, 'set' | 'delete'>;
  clock: Clock;
  log: Logger;
  /** Every log line of the module, for its debug stream on every node (FleetBus.publishLog). */
  publishLine(line: DriverLogLine): void;
  devices: ReadonlyMap<string, DeviceAddress>;
  /** A status value larger than this as JSON is refused: every bound client would receive it. */
  maxStatusBytes?: number;
}

/** `name raised: message (ErrorName)` pieces of anything a driver threw. */
export function describeThrown(err: unknown): { message: string; name: string } {
  if (err instanceof Error) return { message: err.message, name: err.name || 'Error' };
  return { message: String(err), name: 'Error' };
}

/**
 * One loaded module: the context handed to its driver (status, timers, logger) and what the driver
 * returned (methods, hooks). Everything the driver hands back to the runtime is called guarded.
 */
export class ModuleInstance {
  private instance: DriverInstance<unknown> | undefined;
  private currentSettings: unknown;
  private readonly status = new Map<string, unknown>();
  private readonly timers = new Set<() => void>();
  private tail: Promise<void> = Promise.resolve();
  private lastWrite: Promise<void> = Promise.resolve();
  private isActive = true;
  private functionsCache: Record<string, FunctionDescription> | undefined;

  constructor(
    readonly record: ModuleRecord,
    readonly driver: DriverDefinition,
    private readonly deps: ModuleInstanceDeps,
  ) {
    this.currentSettings = record.settings;
  }

  get id(): ModuleId {
    return this.record.id;
  }

  get loaded(): boolean {
    return this.instance !== undefined && this.isActive;
  }

  async load(): Promise<void> {
    const instance = await this.driver.load(this.context());
    if (!this.isActive) {
      // Unloaded while its load was still running (moved away, or the load timed out): release what the
      // load opened, or its device connection would outlive the module.
      await instance.onUnload?.();
      return;
    }
    this.instance = instance;
    this.functionsCache = undefined;
  }

  method(name: string): MethodDefinition | undefined {
    const methods = this.instance?.methods;
    return methods && Object.hasOwn(methods, name) ? methods[name] : undefined;
  }

  functions(): Record<string, FunctionDescription> {
    if (!this.functionsCache) {
      this.functionsCache = Object.fromEntries(Object.entries(this.instance?.methods ?? {}).map(([name, m]) => [name, describeFunction(m)]));
    }
    return this.functionsCache;
  }

  async updateSettings(settings: unknown): Promise<void> {
    this.currentSettings = settings;
    await this.instance?.onSettings?.(settings);
  }

  /** Stops timers first, so nothing of the driver runs after its unload hook. */
  async unload(): Promise<void> {
    this.isActive = false;
    for (const cancel of [...this.timers]) cancel();
    this.timers.clear();
    try {
      await this.instance?.onUnload?.();
    } finally {
      await this.tail;
    }
  }

  /** Resolves once the status writes made so far are stored; rejects if the last one failed. */
  flush(): Promise<void> {
    return this.lastWrite;
  }

  /** A log line from the driver or about it: to debug subscribers and the gateway log. */
  emit(level: LogLevel, message: string): void {
    this.deps.log[level](message);
    try {
      this.deps.publishLine({ module: this.id, level, message });
    } catch (err) {
      this.deps.log.error({ err, module: this.id }, 'debug line not published');
    }
  }

  /** Runs driver code from a timer; a throw or rejection becomes a log line, never a crash. */
  guard(what: string, fn: () => unknown): void {
    const report = (err: unknown) => {
      const { message, name } = describeThrown(err);
      this.emit('error', `${what} raised: ${message} (${name})`);
    };
    try {
      const result = fn();
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, report);
    } catch (err) {
      report(err);
    }
  }

  private write(op: () => Promise<void>): void {
    const next = this.tail.then(op);
    this.lastWrite = next;
    this.tail = next.catch((err: unknown) => this.deps.log.warn({ err, module: this.id }, 'status write failed'));
  }

  private context(): ModuleContext<unknown> {
    const self = this;
    const log: DriverLogger = {
      debug: (message) => self.emit('debug', String(message)),
      info: (message) => self.emit('info', String(message)),
      warn: (message) => self.emit('warn', String(message)),
      error: (message) => self.emit('error', String(message)),
    };
    return {
      id: this.id,
      get settings() {
        return self.currentSettings;
      },
      log,
      get active() {
        return self.isActive;
      },
      status: <T extends Record<string, unknown>>(initial: Partial<T>): StatusVariables<T> => {
        const vars: StatusVariables<T> = {
          get: (name) => self.status.get(name) as T[typeof name] | undefined,
          set: (name, value) => self.setStatus(name, value),
          delete: (name) => self.deleteStatus(name),
        };
        for (const [name, value] of Object.entries(initial)) self.setStatus(name, value);
        return vars;
      },
      every: (intervalMs, fn) => this.every(intervalMs, fn),
      after: (delayMs, fn) => this.after(delayMs, fn),
      device: (simulatorId) => this.deps.devices.get(simulatorId),
    };
  }

  private setStatus(name: string, value: unknown): void {
    if (!this.isActive) return;
    const json = JSON.stringify(value === undefined ? null : value);
    const cap = this.deps.maxStatusBytes;
    if (cap !== undefined && json.length > cap && Buffer.byteLength(json) > cap) {
      const message = `status ${name}: ${Buffer.byteLength(json)} bytes is over the ${cap}-byte cap (control.maxStatusBytes)`;
      this.emit('error', message);
      throw new RangeError(message);
    }
    this.status.set(name, value);
    // The store compares with what it holds (across nodes), so an unchanged value publishes nothing.
    this.write(() => this.deps.store.set(this.id, name, json));
  }

  private deleteStatus(name: string): void {
    if (!this.isActive) return;
    this.status.delete(name);
    this.write(() => this.deps.store.delete(this.id, name));
  }

  private every(intervalMs: number, fn: () => unknown): () => void {
    const period = Math.max(minIntervalMs, intervalMs);
    let cancelTimer: () => void = () => {};
    const cancel = () => {
      cancelTimer();
      this.timers.delete(cancel);
    };
    const arm = () => {
      cancelTimer = this.deps.clock.schedule(period, () => {
        if (!this.isActive || !this.timers.has(cancel)) return;
        arm();
        this.guard('timer', fn);
      });
    };
    if (!this.isActive) return () => {};
    this.timers.add(cancel);
    arm();
    return cancel;
  }

  private after(delayMs: number, fn: () => unknown): () => void {
    if (!this.isActive) return () => {};
    const cancel = () => {
      cancelTimer();
      this.timers.delete(cancel);
    };
    const cancelTimer = this.deps.clock.schedule(Math.max(0, delayMs), () => {
      if (!this.isActive || !this.timers.has(cancel)) return;
      this.timers.delete(cancel);
      this.guard('timer', fn);
    });
    this.timers.add(cancel);
    return cancel;
  }
}
