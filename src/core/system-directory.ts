import type { ModuleId, SystemId, ZoneId } from './ids.js';

export interface ZoneRecord {
  id: ZoneId;
  name: string;
  description?: string;
}

export interface ModuleRecord {
  id: ModuleId;
  /** Driver name as registered (e.g. `display`). */
  driver: string;
  /** Name inside systems: custom name, else the driver's generic name (e.g. `Display`). */
  name: string;
  settings: Record<string, unknown>;
}

export interface SystemRecord {
  id: SystemId;
  name: string;
  description?: string;
  zones: ZoneId[];
  /** Module ids in system order; index = 1-based position among same-named modules. */
  modules: ModuleId[];
}

/** The configured systems, zones and modules (read-only at run time; from the configuration file). */
export interface SystemDirectory {
  system(id: SystemId): SystemRecord | undefined;
  systems(): SystemRecord[];
  zone(id: ZoneId): ZoneRecord | undefined;
  zones(): ZoneRecord[];
  module(id: ModuleId): ModuleRecord | undefined;
  modules(): ModuleRecord[];
  /** The module at `name` + 1-based `index` in the system, or undefined. */
  resolve(system: SystemId, name: string, index: number): ModuleId | undefined;
}
