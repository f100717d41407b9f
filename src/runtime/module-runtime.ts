import type { Clock } from '../core/clock.js';
import { type Principal, clearanceRank } from '../core/credentials.js';
import type { DriverLogLine, ExecResult, FunctionDescription } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import { parseArguments } from './arguments.js';
import type { ConfigSystemDirectory } from '../control/config-system-directory.js';
import { type DeviceAddress, type DriverRegistry, MethodReply } from '../driver-api/driver-api.js';
import { ModuleInstance, describeThrown } from './module-instance.js';
import type { LoadOutcome, ModuleRunner } from './module-runner.js';

export interface ModuleRuntimeOptions {
  directory: Pick<ConfigSystemDirectory, 'module' | 'modules'>;
  drivers: DriverRegistry;
  /** Where status writes go: the store, or (in a driver host) the IPC channel to the gateway. */
  store: Pick<StatusStore, 'set' | 'delete'>;
  clock: Clock;
  log: Logger;
  /** An exec (or a module load) that has not settled after this long fails with GatewayError('timeout'). */
  execTimeoutMs: number;
  /** Addresses of the simulated devices started before the modules (by simulator id). */
  devices?: () => ReadonlyMap<string, DeviceAddress>;
  /** Every log line of a module this node runs (its debug stream on every node: FleetBus.publishLog). */
  publishLine?: (line: DriverLogLine) => void;
  /** Status values larger than this as JSON are refused (control.maxStatusBytes). */
  maxStatusBytes?: number;
}


/**
 * The modules this node runs, in this process: one ModuleInstance each, loaded and unloaded one by one as
 * placement (src/fleet/module-placement.ts) decides. Driver code runs guarded: a throw, a rejection or a
 * hang becomes a GatewayError for the caller and a log line, never a crash. A driver that blocks the
 * event loop (a synchronous endless loop) cannot be stopped in-process.
 */
export class ModuleRuntime implements ModuleRunner {
  private readonly modules = new Map<ModuleId, ModuleInstance>();
  /** Why a module placed here is not running (its last load failed), until it is unloaded. */
  private readonly failures = new Map<ModuleId, string>();

  constructor(private readonly options: ModuleRuntimeOptions) {}

  /** Test helper: loads every configured module here. */
  async start(): Promise<void> {
    await Promise.all(this.options.directory.modules().map((record) => this.load(record.id)));
  }

  /** Unloads every module: timers cancelled, unload hooks run, pending status writes flushed. */
  async stop(): Promise<void> {
    await Promise.all([...this.modules.keys()].map((id) => this.unload(id)));
  }

  /** True for a module of the configuration (wherever it runs). */
  isConfigured(module: ModuleId): boolean {
    return this.options.directory.module(module) !== undefined;
  }

  /** Why the module's last load here failed, while it stays placed here. */
  failure(module: ModuleId): string | undefined {
    return this.failures.get(module);
  }

  /** True while the module is loaded here. */
  runs(module: ModuleId): boolean {
    return this.modules.get(module)?.loaded === true;
  }

  loadedModules(): ModuleId[] {
    return [...this.modules.keys()].filter((id) => this.runs(id));
  }

  /**
   * Resolves once the module's driver is loaded and its initial values stored. A driver that fails to
   * load leaves the module not running (the outcome says why); the gateway runs on without it.
   */
  async load(module: ModuleId, settings?: Record<string, unknown>): Promise<LoadOutcome> {
    if (this.modules.has(module)) return { running: this.runs(module) };
    const configured = this.options.directory.module(module);
    const driver = configured && this.options.drivers[configured.driver];
    if (!configured || !driver) return { running: false, reason: `module ${module} is not configured` };
    this.failures.delete(module);
    let record = configured;
    if (settings !== undefined) {
      const parsed = driver.settings.safeParse(settings);
      if (!parsed.success) {
        const reason = `settings refused: ${parsed.error.issues.map((i) => `${['settings', ...i.path.map(String)].join('.')}: ${i.message}`).join('; ')}`;
        this.failures.set(module, reason);
        return { running: false, reason };
      }
      record = { ...configured, settings: parsed.data as Record<string, unknown> };
    }
    const instance = new ModuleInstance(record, driver, {
      store: this.options.store,
      clock: this.options.clock,
      log: this.options.log.child({ module, driver: record.driver }),
      publishLine: this.options.publishLine ?? (() => {}),
      devices: this.options.devices?.() ?? new Map<string, DeviceAddress>(),
      ...(this.options.maxStatusBytes !== undefined && { maxStatusBytes: this.options.maxStatusBytes }),
    });
    this.modules.set(module, instance);
    try {
      await this.guarded(instance, 'load', () => instance.load());
      // Initial values are stored before the module serves, so a first read or bind sees them.
      await instance.flush();
      instance.emit('info', `loaded (driver ${record.driver})`);
      return { running: true };
    } catch (err) {
      const reason = `load failed: ${publicText(err)}`;
      this.options.log.error({ module, err: publicText(err) }, 'module failed to load');
      await this.unloadInstance(instance);
      this.modules.delete(module);
      this.failures.set(module, reason);
      return { running: false, reason };
    }
  }

  /** Stops the module here: timers cancelled, its unload hook run (device connections closed). */
  async unload(module: ModuleId): Promise<void> {
    this.failures.delete(module);
    const instance = this.modules.get(module);
    if (!instance) return;
    this.modules.delete(module);
    await this.unloadInstance(instance);
  }

  /**
   * Runs a method of a module loaded here; the result is serialised once, here. Rejects with
   * GatewayError: 'module_not_found' (not running here), 'bad_request' (no such method, bad arguments),
   * 'forbidden' (above the caller's clearance), 'request_failed' (the driver raised), 'timeout'.
   */
  async exec(module: ModuleId, name: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    const instance = this.running(module);
    const method = instance.method(name);
    if (!method) throw new GatewayError('bad_request', `could not find function ${name}`);
    if (clearanceRank[caller.clearance] < clearanceRank[method.clearance]) {
      throw new GatewayError('forbidden', `access denied: ${name} requires ${method.clearance} clearance`);
    }
    const parsed = parseArguments(name, method, Array.isArray(args) ? args : []);
    const returned = await this.guarded(instance, name, () => method.run(parsed));
    try {
      await instance.flush();
    } catch (err) {
      throw new GatewayError('unavailable', 'status store unavailable', { cause: err });
    }
    const reply = returned instanceof MethodReply ? returned : new MethodReply(returned, 200);
    return { json: toJson(name, reply.value, instance), code: reply.code };
  }

  /** The methods of a module loaded here, or undefined when it does not run here. */
  functions(module: ModuleId): Record<string, FunctionDescription> | undefined {
    return this.modules.get(module)?.loaded ? this.modules.get(module)!.functions() : undefined;
  }

  /** Validates new settings with the driver's schema and hands them to the running module. */
  async updateSettings(module: ModuleId, settings: unknown): Promise<void> {
    const instance = this.running(module);
    const parsed = instance.driver.settings.safeParse(settings);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${['settings', ...i.path.map(String)].join('.')}: ${i.message}`);
      throw new GatewayError('bad_request', `module ${module}: ${problems.join('; ')}`);
    }
    await this.guarded(instance, 'settings update', () => instance.updateSettings(parsed.data));
  }

  /**
   * Runs driver code with the exec timeout. Anything it throws becomes
   * GatewayError('request_failed', 'module raised: <message> (<ErrorName>)') and a log line.
   */
  private guarded<T>(instance: ModuleInstance, what: string, fn: () => T | Promise<T>): Promise<T> {
    const { execTimeoutMs } = this.options;
    const work = new Promise<T>((resolve) => resolve(fn())).catch((err: unknown) => {
      const { message, name } = describeThrown(err);
      instance.emit('error', `${what} raised: ${message} (${name})`);
      throw new GatewayError('request_failed', `module raised: ${message} (${name})`, { cause: err });
    });
    return new Promise<T>((resolve, reject) => {
      const cancel = this.options.clock.schedule(execTimeoutMs, () => {
        instance.emit('warn', `${what} did not return within ${execTimeoutMs} ms`);
        reject(new GatewayError('timeout', `${what} timed out after ${execTimeoutMs} ms`));
      });
      work.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (err: unknown) => {
          cancel();
          reject(err);
        },
      );
    });
  }

  private running(module: ModuleId): ModuleInstance {
    const instance = this.modules.get(module);
    if (!instance?.loaded) {
      const failure = this.failures.get(module);
      throw new GatewayError('module_not_found', `module ${module} is not running${failure ? ` (${failure})` : ''}`);
    }
    return instance;
  }

  private async unloadInstance(instance: ModuleInstance): Promise<void> {
    try {
      await this.guarded(instance, 'unload', () => instance.unload());
    } catch (err) {
      this.options.log.warn({ module: instance.id, err: publicText(err) }, 'module unload failed');
    }
  }
}

function publicText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The exec result as JSON text (undefined becomes null); a value JSON cannot carry is the driver's failure. */
function toJson(method: string, value: unknown, instance: ModuleInstance): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (err) {
    const { message, name } = describeThrown(err);
    instance.emit('error', `${method} returned a value that is not JSON: ${message}`);
    throw new GatewayError('request_failed', `module raised: ${message} (${name})`);
  }
}
