import type { BackendState } from '../../core/backend-state.js';
import type { ModuleId, SystemId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import { callWatchers, type StatusStore, type StatusWatcher } from '../../core/status-store.js';

/**
 * The embedded status store (same contract suite as Redis). Single-node limit: values live in this
 * process and another gateway process cannot see them. Watchers are called synchronously, in change order.
 */
export class MemoryStatusStore implements StatusStore {
  readonly name = 'state';
  readonly kind = 'memory';
  private running = false;
  private readonly values = new Map<ModuleId, Map<string, string>>();
  private readonly watchers = new Map<string, Set<StatusWatcher>>();
  private readonly lookups = new Map<SystemId, Record<string, ModuleId>>();
  private readonly systemListeners = new Set<(system: SystemId) => void>();

  constructor(private readonly log: Logger = silentLogger) {}

  state(): BackendState {
    return this.running ? 'up' : 'down';
  }

  async start(): Promise<void> {
    this.running = true;
  }

  async close(): Promise<void> {
    this.running = false;
    this.watchers.clear();
  }

  async get(module: ModuleId, name: string): Promise<string | undefined> {
    return this.values.get(module)?.get(name);
  }

  async getAll(module: ModuleId): Promise<Record<string, string>> {
    return Object.fromEntries(this.values.get(module) ?? []);
  }

  async set(module: ModuleId, name: string, json: string): Promise<void> {
    let vars = this.values.get(module);
    if (!vars) this.values.set(module, (vars = new Map()));
    if (vars.get(name) === json) return;
    vars.set(name, json);
    this.publish(module, name, json);
  }

  async delete(module: ModuleId, name: string): Promise<void> {
    if (this.values.get(module)?.delete(name)) this.publish(module, name, 'null');
  }

  async watch(module: ModuleId, name: string, onChange: StatusWatcher): Promise<() => Promise<void>> {
    const key = channel(module, name);
    // A wrapper per call, so watching twice with one function gives two independent watches.
    const watcher: StatusWatcher = (json) => onChange(json);
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(watcher);
    return async () => {
      const current = this.watchers.get(key);
      current?.delete(watcher);
      if (current?.size === 0) this.watchers.delete(key);
    };
  }

  async setSystemModules(system: SystemId, modules: Record<string, ModuleId>): Promise<void> {
    this.lookups.set(system, { ...modules });
    for (const listener of [...this.systemListeners]) this.call(() => listener(system));
  }

  async lookup(system: SystemId, name: string, index: number): Promise<ModuleId | undefined> {
    const table = this.lookups.get(system);
    const key = `${name}/${index}`;
    return table && Object.hasOwn(table, key) ? table[key] : undefined;
  }

  onSystemChange(listener: (system: SystemId) => void): () => void {
    const own = (system: SystemId) => listener(system);
    this.systemListeners.add(own);
    return () => this.systemListeners.delete(own);
  }

  private publish(module: ModuleId, name: string, json: string): void {
    const watchers = this.watchers.get(channel(module, name));
    if (watchers) callWatchers(watchers, json, this.log);
  }

  /** A listener's failure is its own: it must not stop the others or the writer. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'status listener threw');
    }
  }
}

const channel = (module: ModuleId, name: string) => `${module}/${name}`;
