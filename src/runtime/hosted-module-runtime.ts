import type { Clock } from '../core/clock.js';
import type { Principal } from '../core/credentials.js';
import type { DriverLogLine, ExecResult, FunctionDescription } from '../core/driver-host.js';
import { GatewayError, errorCodes } from '../core/errors.js';
import { type ModuleId, moduleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import type { ModuleRecord } from '../core/system-directory.js';
import type { DeviceAddress } from '../driver-api/driver-api.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { DriverHostProcess } from './hosts/driver-host-process.js';
import type { DriverSource, FromHost, HostError } from './hosts/host-messages.js';
import type { LoadOutcome, ModuleRunner } from './module-runner.js';

export interface HostOptions {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxOldSpaceMb: number;
  restartInitialMs: number;
  restartMaxMs: number;
}

export interface HostedModuleRuntimeOptions {
  modules: { module(id: ModuleId): ModuleRecord | undefined };
  /** Where each driver key's code is (bundled, or a file). */
  sourceOf(driverKey: string): DriverSource;
  store: Pick<StatusStore, 'set' | 'delete'>;
  devices: () => ReadonlyMap<string, DeviceAddress>;
  publishLine(line: DriverLogLine): void;
  /** A module's running state changed outside a load (its host died, or came back). */
  onModuleState(module: ModuleId, outcome: LoadOutcome): void;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  execTimeoutMs: number;
  maxStatusBytes: number;
  hosts: HostOptions;
}

/** One driver's host process and the modules placed on it. */
interface HostSlot {
  driver: string;
  process: DriverHostProcess | undefined;
  /** Modules placed here (loaded, or to load again after a restart). */
  wanted: Set<ModuleId>;
  /** Operators' settings of those modules (applied again after a restart). */
  settings: Map<ModuleId, Record<string, unknown>>;
  loaded: Map<ModuleId, Record<string, FunctionDescription>>;
  failures: Map<ModuleId, string>;
  loading: Map<ModuleId, (outcome: LoadOutcome) => void>;
  unloading: Map<ModuleId, () => void>;
  restarts: number;
  /**
   * When the current host first had a module running; undefined until then. The backoff starts over only
   * after a host has served that long: time spent spawning and loading does not count, or a host whose
   * load kills it would look stable whenever the machine is slow enough.
   */
  servingSince: number | undefined;
  /** Status writes stored since the last ack sent to the host. */
  acks: number;
  cancelRestart: (() => void) | undefined;
}

/**
 * Modules run in driver host processes, one per driver (README "Driver hosts"): the gateway keeps the
 * sockets, bindings, status fan-out and access checks; a host runs `load`, methods, timers and device
 * connections. A host that exits, crashes, passes its memory cap or stops its heartbeat is restarted with
 * exponential backoff (`restartInitialMs` doubling to `restartMaxMs`; reset once a host has run its modules
 * for `restartMaxMs`), and its modules are loaded again with their settings; meanwhile they answer
 * "not running (driver host restarting: <why>)". Status writes a host sends are stored in order per
 * module, and an exec answers only once the writes before its answer are stored.
 */
export class HostedModuleRuntime implements ModuleRunner {
  private readonly slots = new Map<string, HostSlot>();
  private readonly writes = new Map<ModuleId, Promise<void>>();
  private readonly inflight = new Map<ModuleId, Set<Promise<void>>>();
  private stopping = false;

  constructor(private readonly options: HostedModuleRuntimeOptions) {}

  isConfigured(module: ModuleId): boolean {
    return this.options.modules.module(module) !== undefined;
  }

  runs(module: ModuleId): boolean {
    return this.slotOf(module)?.loaded.has(module) === true;
  }

  failure(module: ModuleId): string | undefined {
    return this.slotOf(module)?.failures.get(module);
  }

  loadedModules(): ModuleId[] {
    return [...this.slots.values()].flatMap((slot) => [...slot.loaded.keys()]);
  }

  functions(module: ModuleId): Record<string, FunctionDescription> | undefined {
    return this.slotOf(module)?.loaded.get(module);
  }

  async load(module: ModuleId, settings?: Record<string, unknown>): Promise<LoadOutcome> {
    const record = this.options.modules.module(module);
    if (!record) return { running: false, reason: `module ${module} is not configured` };
    const slot = this.slotFor(record.driver);
    slot.wanted.add(module);
    if (settings === undefined) slot.settings.delete(module);
    else slot.settings.set(module, settings);
    if (!slot.process?.alive) {
      const reason = slot.failures.get(module) ?? 'driver host restarting';
      return { running: false, reason };
    }
    return this.loadOn(slot, record);
  }

  async unload(module: ModuleId): Promise<void> {
    const slot = this.slotOf(module);
    if (!slot) return;
    slot.wanted.delete(module);
    slot.settings.delete(module);
    slot.failures.delete(module);
    const wasLoaded = slot.loaded.delete(module);
    const running = [...(this.inflight.get(module) ?? [])];
    if (running.length > 0) {
      let cancel: () => void = () => {};
      await Promise.race([Promise.all(running), new Promise<void>((resolve) => (cancel = this.options.clock.schedule(this.options.execTimeoutMs, resolve)))]);
      cancel();
    }
    if (wasLoaded && slot.process?.alive) {
      const unloaded = new Promise<void>((resolve) => slot.unloading.set(module, resolve));
      slot.process.send({ t: 'unload', module });
      const cancel = this.options.clock.schedule(this.options.execTimeoutMs, () => slot.unloading.get(module)?.());
      await unloaded;
      cancel();
      slot.unloading.delete(module);
    }
    await (this.writes.get(module) ?? Promise.resolve());
  }

  async exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    const slot = this.running(module);
    const request = slot.process!.request((id) => ({ t: 'exec', id, module, method, args, caller: { id: caller.id, clearance: caller.clearance } }));
    // An unload (hand-over, stop) lets the execs already running finish first.
    let running = this.inflight.get(module);
    if (!running) this.inflight.set(module, (running = new Set()));
    const tracked = request.then(() => {}, () => {});
    running.add(tracked);
    void tracked.then(() => running.delete(tracked));
    const reply = await request;
    if (!reply.ok) throw fromHostError(reply.error);
    await this.flush(module);
    return { json: reply.json ?? 'null', code: reply.code ?? 200 };
  }

  async updateSettings(module: ModuleId, settings: unknown): Promise<void> {
    const slot = this.running(module);
    const reply = await slot.process!.request((id) => ({ t: 'settings', id, module, settings }));
    if (!reply.ok) throw fromHostError(reply.error);
    if (typeof settings === 'object' && settings !== null) slot.settings.set(module, settings as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.slots.values()].map(async (slot) => {
        slot.cancelRestart?.();
        await Promise.all([...slot.loaded.keys()].map((module) => this.unload(module)));
        await slot.process?.stop();
      }),
    );
  }

  /** The driver's slot; its host process starts with the first module of that driver placed here. */
  private slotFor(driver: string): HostSlot {
    let slot = this.slots.get(driver);
    if (!slot) {
      slot = {
        driver,
        process: undefined,
        wanted: new Set(),
        settings: new Map(),
        loaded: new Map(),
        failures: new Map(),
        loading: new Map(),
        unloading: new Map(),
        restarts: 0,
        servingSince: undefined,
        acks: 0,
        cancelRestart: undefined,
      };
      this.slots.set(driver, slot);
      this.startHost(slot);
    }
    return slot;
  }

  private slotOf(module: ModuleId): HostSlot | undefined {
    const record = this.options.modules.module(module);
    return record ? this.slots.get(record.driver) : undefined;
  }

  private running(module: ModuleId): HostSlot {
    const slot = this.slotOf(module);
    if (!slot?.loaded.has(module) || !slot.process?.alive) {
      const failure = slot?.failures.get(module);
      throw new GatewayError('module_not_found', `module ${module} is not running${failure ? ` (${failure})` : ''}`);
    }
    return slot;
  }

  private async loadOn(slot: HostSlot, record: ModuleRecord): Promise<LoadOutcome> {
    const module = record.id;
    const outcome = await new Promise<LoadOutcome>((resolve) => {
      slot.loading.set(module, resolve);
      const source = this.options.sourceOf(record.driver);
      const settings = slot.settings.get(module);
      if (!slot.process!.send({ t: 'load', module: record, driver: source, devices: [...this.options.devices()], ...(settings && { settings }) })) {
        resolve({ running: false, reason: 'driver host restarting' });
      }
    });
    slot.loading.delete(module);
    await this.flush(module).catch(() => {});
    if (!slot.wanted.has(module)) return { running: false, reason: 'unloaded while loading' };
    if (outcome.running) slot.failures.delete(module);
    else slot.failures.set(module, outcome.reason ?? 'load failed');
    return outcome;
  }

  private startHost(slot: HostSlot): void {
    const { options } = this;
    const log = options.log.child({ driver: slot.driver });
    const host = new DriverHostProcess({
      name: slot.driver,
      ...options.hosts,
      execTimeoutMs: options.execTimeoutMs,
      maxStatusBytes: options.maxStatusBytes,
      clock: options.clock,
      log,
      onMessage: (message) => this.fromHost(slot, message, log),
      onExit: (reason) => this.hostExited(slot, host, reason, log),
    });
    slot.process = host;
    slot.servingSince = undefined;
    host.start();
    options.metrics.driverHosts.inc();
  }

  private fromHost(slot: HostSlot, message: Exclude<FromHost, { t: 'hb' } | { t: 'reply' }>, log: Logger): void {
    const module = moduleId(message.t === 'log' ? message.line.module : message.module);
    // A host speaks only for the modules placed on it: driver code could send anything.
    if (!slot.wanted.has(module) && !slot.loaded.has(module) && !slot.loading.has(module) && !slot.unloading.has(module)) {
      log.warn({ module, kind: message.t }, 'driver host sent a message for a module it does not run; dropped');
      return;
    }
    switch (message.t) {
      case 'loaded': {
        if (message.running && !slot.wanted.has(module)) slot.process?.send({ t: 'unload', module });
        else if (message.running) {
          slot.loaded.set(module, message.functions ?? {});
          slot.servingSince ??= this.options.clock.now();
        }
        else log.error({ module, reason: message.reason }, 'module failed to load');
        slot.loading.get(module)?.({ running: message.running, ...(message.reason !== undefined && { reason: message.reason }) });
        return;
      }
      case 'unloaded':
        slot.unloading.get(module)?.();
        return;
      case 'status':
        this.write(module, () => this.options.store.set(module, message.name, message.json), () => this.acknowledge(slot));
        return;
      case 'delete':
        this.write(module, () => this.options.store.delete(module, message.name), () => this.acknowledge(slot));
        return;
      case 'log': {
        const line = { ...message.line, module };
        log[line.level]({ module }, line.message);
        this.options.publishLine(line);
        return;
      }
    }
  }

  private hostExited(slot: HostSlot, host: DriverHostProcess, reason: string, log: Logger): void {
    if (slot.process !== host) return;
    slot.process = undefined;
    const { options } = this;
    for (const [, resolve] of slot.loading) resolve({ running: false, reason: `driver host exited during load (${reason})` });
    for (const [, resolve] of slot.unloading) resolve();
    const affected = [...slot.wanted];
    slot.loaded.clear();
    if (this.stopping || reason === 'stopped') return;
    options.metrics.driverHostRestarts.inc({ driver: slot.driver });
    const servedFor = slot.servingSince === undefined ? 0 : options.clock.now() - slot.servingSince;
    if (servedFor >= options.hosts.restartMaxMs) slot.restarts = 0;
    const delay = Math.min(options.hosts.restartInitialMs * 2 ** slot.restarts, options.hosts.restartMaxMs);
    slot.restarts += 1;
    const why = `driver host restarting: ${reason}`;
    log.error({ reason, modules: affected, restartInMs: delay, restarts: slot.restarts }, 'driver host stopped; restarting');
    for (const module of affected) {
      slot.failures.set(module, why);
      options.publishLine({ module, level: 'error', message: `${why}; restart in ${delay} ms` });
      options.onModuleState(module, { running: false, reason: why });
    }
    slot.cancelRestart = options.clock.schedule(delay, () => {
      slot.cancelRestart = undefined;
      if (this.stopping) return;
      this.startHost(slot);
      for (const module of [...slot.wanted]) {
        const record = options.modules.module(module);
        if (!record) continue;
        void this.loadOn(slot, record).then((outcome) => {
          if (slot.wanted.has(module)) options.onModuleState(module, outcome);
        });
      }
    });
  }

  /** Tells the host one more of its writes is stored (it keeps at most a window of them in flight). */
  private acknowledge(slot: HostSlot): void {
    slot.acks += 1;
    if (slot.acks > 1) return;
    setImmediate(() => {
      const n = slot.acks;
      slot.acks = 0;
      slot.process?.send({ t: 'ack', n });
    });
  }

  private write(module: ModuleId, op: () => Promise<void>, done: () => void): void {
    const next = (this.writes.get(module) ?? Promise.resolve()).then(op);
    const settled = next.catch((err: unknown) => this.options.log.warn({ err: String(err), module }, 'status write failed')).finally(done);
    this.writes.set(module, settled);
    // The last write's own outcome, for flush(): an exec after a failed write answers 'unavailable'.
    this.lastWrite.set(module, next);
  }

  private readonly lastWrite = new Map<ModuleId, Promise<void>>();

  private async flush(module: ModuleId): Promise<void> {
    try {
      await (this.lastWrite.get(module) ?? Promise.resolve());
    } catch (err) {
      throw new GatewayError('unavailable', 'status store unavailable', { cause: err });
    }
  }
}

/** A host's error answer as the gateway's own error (a code it does not know counts as internal). */
function fromHostError(error: HostError): GatewayError {
  return new GatewayError(errorCodes.includes(error.code) ? error.code : 'internal', error.message);
}
