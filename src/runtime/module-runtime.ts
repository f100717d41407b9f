import type { Clock } from '../core/clock.js';
import { type Principal, clearanceRank } from '../core/credentials.js';
import type { DriverHost, DriverLogLine, ExecResult, FunctionDescription } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import { parseArguments } from './arguments.js';
import type { ConfigSystemDirectory } from '../control/config-system-directory.js';
import { type DeviceAddress, type DriverRegistry, MethodReply } from '../driver-api/driver-api.js';
import { ModuleInstance, describeThrown } from './module-instance.js';

export interface ModuleRuntimeOptions {
  directory: ConfigSystemDirectory;
  drivers: DriverRegistry;
  store: StatusStore;
  clock: Clock;
  log: Logger;
  /** An exec (or a module load) that has not settled after this long fails with GatewayError('timeout'). */
  execTimeoutMs: number;
  /** Addresses of the simulated devices started before the modules (by simulator id). */
  devices?: () => ReadonlyMap<string, DeviceAddress>;
}

/**
 * The in-process DriverHost: one ModuleInstance per configured module, all in this process. Driver code
 * runs guarded: a throw, a rejection or a hang becomes a GatewayError for the caller and a log line, never
 * a crash. Single-node note: with Redis, every gateway node runs every module; status goes through the
 * shared store, so all nodes see one view, and the store's compare-and-set keeps "publish only on change".
 * A driver that blocks the event loop (a synchronous endless loop) cannot be stopped in-process.
 */
export class ModuleRuntime implements DriverHost {
  private readonly modules = new Map<ModuleId, ModuleInstance>();
  private readonly listeners = new Map<ModuleId, Set<(line: DriverLogLine) => void>>();

  constructor(private readonly options: ModuleRuntimeOptions) {}

  /** Registers every system's `<Name>/<index>` lookup in the store, then loads every module. */
  async start(): Promise<void> {
    const { directory, store } = this.options;
    for (const system of directory.systems()) await store.setSystemModules(system.id, directory.lookupTable(system.id));
    const devices = this.options.devices?.() ?? new Map<string, DeviceAddress>();
    await Promise.all(directory.modules().map((record) => this.load(record.id, devices)));
  }

  /** Unloads every module: timers cancelled, unload hooks run, pending status writes flushed. */
  async stop(): Promise<void> {
    const instances = [...this.modules.values()];
    this.modules.clear();
    await Promise.all(instances.map((instance) => this.unload(instance)));
  }

  /** Exec metrics are counted by the meterExecs decorator (src/observability/metered-driver-host.ts). */
  async exec(module: ModuleId, name: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    const instance = this.running(module);
    const method = instance.method(name);
    if (!method) throw new GatewayError('bad_request', `could not find function ${name}`);
    if (clearanceRank[caller.clearance] < clearanceRank[method.clearance]) {
      throw new GatewayError('forbidden', `function ${name} requires ${method.clearance} clearance`);
    }
    const parsed = parseArguments(name, method, Array.isArray(args) ? args : []);
    const returned = await this.guarded(instance, name, () => method.run(parsed));
    try {
      await instance.flush();
    } catch (err) {
      throw new GatewayError('unavailable', 'status store unavailable', { cause: err });
    }
    const reply = returned instanceof MethodReply ? returned : new MethodReply(returned, 200);
    return { value: toJson(name, reply.value, instance), code: reply.code };
  }

  functions(module: ModuleId): Record<string, FunctionDescription> | undefined {
    const instance = this.modules.get(module);
    if (instance) return instance.functions();
    return this.options.directory.module(module) ? {} : undefined;
  }

  debug(module: ModuleId, onLine: (line: DriverLogLine) => void): () => void {
    const own = (line: DriverLogLine) => onLine(line);
    this.listenersOf(module).add(own);
    return () => {
      this.listeners.get(module)?.delete(own);
    };
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
    if (!instance?.loaded) throw new GatewayError('module_not_found', `module ${module} is not running`);
    return instance;
  }

  private listenersOf(module: ModuleId): Set<(line: DriverLogLine) => void> {
    let set = this.listeners.get(module);
    if (!set) this.listeners.set(module, (set = new Set()));
    return set;
  }

  private async load(module: ModuleId, devices: ReadonlyMap<string, DeviceAddress>): Promise<void> {
    const record = this.options.directory.module(module)!;
    const driver = this.options.drivers[record.driver]!;
    const instance = new ModuleInstance(record, driver, {
      store: this.options.store,
      clock: this.options.clock,
      log: this.options.log.child({ module, driver: record.driver }),
      listeners: this.listenersOf(module),
      devices,
    });
    this.modules.set(module, instance);
    try {
      await this.guarded(instance, 'load', () => instance.load());
      // Initial values are stored before the gateway serves, so a first read or bind sees them.
      await instance.flush();
      instance.emit('info', `loaded (driver ${record.driver})`);
    } catch (err) {
      // The gateway runs on without it: exec answers "not running", the log says why.
      this.options.log.error({ module, err: publicText(err) }, 'module failed to load');
      await this.unload(instance);
    }
  }

  private async unload(instance: ModuleInstance): Promise<void> {
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

/** The exec result as plain JSON; a value JSON cannot carry is the driver's failure. */
function toJson(method: string, value: unknown, instance: ModuleInstance): unknown {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : (JSON.parse(text) as unknown);
  } catch (err) {
    const { message, name } = describeThrown(err);
    instance.emit('error', `${method} returned a value that is not JSON: ${message}`);
    throw new GatewayError('request_failed', `module raised: ${message} (${name})`);
  }
}
