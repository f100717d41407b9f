import { clearanceRank, type Principal } from '../../src/core/credentials.js';
import type { DriverHost, DriverLogLine, ExecResult, FunctionDescription } from '../../src/core/driver-host.js';
import { GatewayError } from '../../src/core/errors.js';
import type { ModuleId, SystemId, ZoneId } from '../../src/core/ids.js';
import type { StatusStore } from '../../src/core/status-store.js';
import type { ModuleRecord, SystemDirectory, SystemRecord, ZoneRecord } from '../../src/core/system-directory.js';

/** Small in-test doubles for unit tests of the control session (the integration tests use the real runtime). */
export const principal = (over: Partial<Principal> = {}): Principal => ({
  id: 'cred-1',
  kind: 'api-key',
  clearance: 'user',
  canPublish: false,
  systems: [],
  zones: ['zone-a' as ZoneId],
  scopes: ['public'],
  ...over,
});

export class FakeDirectory implements SystemDirectory {
  constructor(
    private readonly sys: SystemRecord[],
    private readonly mods: ModuleRecord[],
    private readonly zs: ZoneRecord[] = [],
  ) {}
  system(id: SystemId) {
    return this.sys.find((s) => s.id === id);
  }
  systems() {
    return this.sys;
  }
  zone(id: ZoneId) {
    return this.zs.find((z) => z.id === id);
  }
  zones() {
    return this.zs;
  }
  module(id: ModuleId) {
    return this.mods.find((m) => m.id === id);
  }
  modules() {
    return this.mods;
  }
  resolve(system: SystemId, name: string, index: number): ModuleId | undefined {
    const s = this.system(system);
    if (!s) return undefined;
    const named = s.modules.filter((id) => this.module(id)?.name === name);
    return named[index - 1];
  }
}

/** A minimal status store: values and watchers in memory, changes delivered synchronously. */
export class FakeStore implements StatusStore {
  readonly name = 'state';
  readonly kind = 'fake';
  readonly values = new Map<string, string>();
  readonly watchers = new Map<string, Set<(json: string) => void>>();
  state() {
    return 'up' as const;
  }
  async start() {}
  async close() {}
  async get(module: ModuleId, name: string) {
    return this.values.get(`${module}/${name}`);
  }
  async getAll(module: ModuleId) {
    const out: Record<string, string> = {};
    for (const [k, v] of this.values) if (k.startsWith(`${module}/`)) out[k.slice(module.length + 1)] = v;
    return out;
  }
  async set(module: ModuleId, name: string, json: string) {
    const key = `${module}/${name}`;
    if (this.values.get(key) === json) return;
    this.values.set(key, json);
    for (const w of this.watchers.get(key) ?? []) w(json);
  }
  async delete(module: ModuleId, name: string) {
    const key = `${module}/${name}`;
    if (!this.values.delete(key)) return;
    for (const w of this.watchers.get(key) ?? []) w('null');
  }
  async watch(module: ModuleId, name: string, onChange: (json: string) => void) {
    const key = `${module}/${name}`;
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(onChange);
    return async () => {
      set.delete(onChange);
    };
  }
  watcherCount(module: string, name: string): number {
    return this.watchers.get(`${module}/${name}`)?.size ?? 0;
  }
  async setSystemModules() {}
  async lookup() {
    return undefined;
  }
  onSystemChange() {
    return () => {};
  }
}

type Method = { clearance?: FunctionDescription['clearance']; run: (args: unknown[]) => unknown };

/** A driver host with methods given as plain functions. */
export class FakeHost implements DriverHost {
  readonly debugListeners = new Map<string, Set<(line: DriverLogLine) => void>>();
  constructor(private readonly methods: Record<string, Record<string, Method>>) {}
  async exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    const fns = this.methods[module];
    if (!fns) throw new GatewayError('module_not_found', `module not running: ${module}`);
    const fn = Object.hasOwn(fns, method) ? fns[method] : undefined;
    if (!fn) throw new GatewayError('bad_request', `could not find function ${method}`);
    const clearance = fn.clearance ?? 'user';
    if (clearanceRank[caller.clearance] < clearanceRank[clearance]) {
      throw new GatewayError('forbidden', `access denied: ${method} requires ${clearance} clearance`);
    }
    try {
      return { json: JSON.stringify((await fn.run(args)) ?? null), code: 200 };
    } catch (err) {
      throw new GatewayError('request_failed', `module raised: ${(err as Error).message} (${(err as Error).name})`);
    }
  }
  async functions(module: ModuleId): Promise<Record<string, FunctionDescription>> {
    const fns = this.methods[module];
    if (!fns) throw new GatewayError('module_not_found', `module not running: ${module}`);
    return Object.fromEntries(
      Object.entries(fns).map(([name, m]) => [name, { arity: 0, params: {}, order: [], clearance: m.clearance ?? 'user' }]),
    );
  }
  async debug(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void> {
    let set = this.debugListeners.get(module);
    if (!set) this.debugListeners.set(module, (set = new Set()));
    set.add(onLine);
    return () => {
      set.delete(onLine);
    };
  }
  async updateSettings(): Promise<void> {
    throw new GatewayError('bad_request', 'the fake host has no settings');
  }
  emit(module: string, message: string) {
    for (const l of this.debugListeners.get(module) ?? []) l({ module: module as ModuleId, level: 'debug', message });
  }
}

/** An exec result as a test compares it: the JSON text parsed back. */
export function outcome(result: ExecResult): { value: unknown; code: number } {
  return { value: JSON.parse(result.json) as unknown, code: result.code };
}
