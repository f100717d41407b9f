import type { ControlConfig } from '../config/control-schema.js';
import { ConfigError } from '../config/load.js';
import { type ModuleId, type SystemId, type ZoneId, moduleId, systemId, zoneId } from '../core/ids.js';
import type { ModuleRecord, SystemDirectory, SystemRecord, ZoneRecord } from '../core/system-directory.js';
import type { DriverRegistry } from '../driver-api/driver-api.js';

/**
 * The systems, zones and modules of the configuration, checked across entries: unknown driver, duplicate
 * id, settings refused by the driver's schema, a system naming an undefined module, zone or simulator.
 * Throws ConfigError listing every problem, each naming the entry (`control.systems[1] (sys-x): ...`).
 * Module settings come out parsed by the driver's schema (defaults applied).
 */
export function buildSystemDirectory(control: ControlConfig, drivers: DriverRegistry): ConfigSystemDirectory {
  const problems: string[] = [];
  const zones = uniqueById(control.zones, 'control.zones', problems);
  const simulators = uniqueById(control.simulators, 'control.simulators', problems);
  const modulesById = new Map<string, ModuleRecord>();

  const seenModules = new Map<string, number>();
  control.modules.forEach((mod, i) => {
    const where = `control.modules[${i}] (${mod.id})`;
    const first = seenModules.get(mod.id);
    if (first !== undefined) {
      problems.push(`${where}: duplicate id (also control.modules[${first}])`);
      return;
    }
    seenModules.set(mod.id, i);
    const driver = Object.hasOwn(drivers, mod.driver) ? drivers[mod.driver] : undefined;
    if (!driver) {
      problems.push(`${where}: unknown driver "${mod.driver}" (known: ${Object.keys(drivers).sort().join(', ')})`);
      return;
    }
    const parsed = driver.settings.safeParse(mod.settings);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = ['settings', ...issue.path.map(String)].join('.');
        problems.push(`${where}: ${key}: ${issue.message}`);
      }
      return;
    }
    const simulator = (mod.settings as { simulator?: unknown }).simulator;
    if (typeof simulator === 'string' && !simulators.has(simulator)) {
      problems.push(`${where}: settings.simulator: simulator "${simulator}" is not defined in control.simulators`);
    }
    modulesById.set(mod.id, {
      id: moduleId(mod.id),
      driver: mod.driver,
      name: mod.name ?? driver.name,
      settings: parsed.data as Record<string, unknown>,
    });
  });

  const seenSystems = new Map<string, number>();
  const systems: SystemRecord[] = [];
  control.systems.forEach((sys, i) => {
    const where = `control.systems[${i}] (${sys.id})`;
    const first = seenSystems.get(sys.id);
    if (first !== undefined) {
      problems.push(`${where}: duplicate id (also control.systems[${first}])`);
      return;
    }
    seenSystems.set(sys.id, i);
    for (const zone of sys.zones) if (!zones.has(zone)) problems.push(`${where}: zone "${zone}" is not defined`);
    const listed = new Set<string>();
    for (const mod of sys.modules) {
      if (!seenModules.has(mod)) problems.push(`${where}: module "${mod}" is not defined`);
      if (listed.has(mod)) problems.push(`${where}: module "${mod}" is listed twice`);
      listed.add(mod);
    }
    systems.push({
      id: systemId(sys.id),
      name: sys.name,
      ...(sys.description !== undefined ? { description: sys.description } : {}),
      zones: sys.zones.map(zoneId),
      modules: sys.modules.map(moduleId),
    });
  });

  if (problems.length > 0) throw new ConfigError(problems);
  return new ConfigSystemDirectory(
    control.zones.map((z) => ({ id: zoneId(z.id), name: z.name, ...(z.description !== undefined ? { description: z.description } : {}) })),
    systems,
    [...modulesById.values()],
  );
}

function uniqueById(entries: ReadonlyArray<{ id: string }>, key: string, problems: string[]): Set<string> {
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const first = seen.get(entry.id);
    if (first !== undefined) problems.push(`${key}[${i}] (${entry.id}): duplicate id (also ${key}[${first}])`);
    else seen.set(entry.id, i);
  });
  return new Set(seen.keys());
}

/** Read-only, in configuration order. Pure: no I/O. */
export class ConfigSystemDirectory implements SystemDirectory {
  private readonly zoneMap: Map<ZoneId, ZoneRecord>;
  private readonly systemMap: Map<SystemId, SystemRecord>;
  private readonly moduleMap: Map<ModuleId, ModuleRecord>;

  constructor(
    private readonly zoneList: ZoneRecord[],
    private readonly systemList: SystemRecord[],
    private readonly moduleList: ModuleRecord[],
  ) {
    this.zoneMap = new Map(zoneList.map((z) => [z.id, z]));
    this.systemMap = new Map(systemList.map((s) => [s.id, s]));
    this.moduleMap = new Map(moduleList.map((m) => [m.id, m]));
  }

  system(id: SystemId): SystemRecord | undefined {
    return this.systemMap.get(id);
  }
  systems(): SystemRecord[] {
    return [...this.systemList];
  }
  zone(id: ZoneId): ZoneRecord | undefined {
    return this.zoneMap.get(id);
  }
  zones(): ZoneRecord[] {
    return [...this.zoneList];
  }
  module(id: ModuleId): ModuleRecord | undefined {
    return this.moduleMap.get(id);
  }
  modules(): ModuleRecord[] {
    return [...this.moduleList];
  }

  resolve(system: SystemId, name: string, index: number): ModuleId | undefined {
    if (!Number.isInteger(index) || index < 1) return undefined;
    const sys = this.systemMap.get(system);
    if (!sys) return undefined;
    let seen = 0;
    for (const id of sys.modules) {
      if (this.moduleMap.get(id)?.name === name && ++seen === index) return id;
    }
    return undefined;
  }

  /** `<Name>/<index>` -> module id for one system, as the status store's lookup hash holds it. */
  lookupTable(system: SystemId): Record<string, ModuleId> {
    const sys = this.systemMap.get(system);
    const table: Record<string, ModuleId> = {};
    const counts = new Map<string, number>();
    for (const id of sys?.modules ?? []) {
      const name = this.moduleMap.get(id)?.name;
      if (name === undefined) continue;
      const index = (counts.get(name) ?? 0) + 1;
      counts.set(name, index);
      table[`${name}/${index}`] = id;
    }
    return table;
  }
}
