import type { Principal } from '../core/credentials.js';
import { GatewayError } from '../core/errors.js';
import { type ModuleId, moduleId as toModuleId, type SystemId, systemId as toSystemId } from '../core/ids.js';
import type { SystemDirectory, SystemRecord } from '../core/system-directory.js';
import { canReachSystem, isProtectedName } from './access.js';

/**
 * Resolves what a request addresses, with the checks of the spec's error table in a fixed order:
 * no such system (5), system outside the credential's reach (2), protected module name (2), no such module
 * name + index in the system (6). Shared by the socket sessions and the REST endpoints.
 */
export function reachableSystem(directory: SystemDirectory, principal: Principal, sys: string): SystemRecord {
  const system = directory.system(toSystemId(sys));
  if (!system) throw new GatewayError('system_not_found', `system not found: ${sys}`);
  if (!canReachSystem(principal, system)) throw new GatewayError('forbidden', `access denied to system ${sys}`);
  return system;
}

export interface ModuleTarget {
  system: SystemRecord;
  moduleId: ModuleId;
}

export function resolveModule(directory: SystemDirectory, principal: Principal, sys: string, name: string, index: number): ModuleTarget {
  const system = reachableSystem(directory, principal, sys);
  if (isProtectedName(name)) throw new GatewayError('forbidden', `access denied to module ${name}`);
  const moduleId = directory.resolve(system.id as SystemId, name, index);
  if (!moduleId) throw new GatewayError('module_not_found', `module not found: ${name}_${index} in ${sys}`);
  return { system, moduleId };
}

/** debug/ignore name the module by id (as PlaceOS UIs do) or by name + index. */
export function resolveModuleByIdOrName(
  directory: SystemDirectory,
  principal: Principal,
  sys: string,
  mod: string,
  index: number,
): ModuleTarget {
  const system = reachableSystem(directory, principal, sys);
  const byId = toModuleId(mod);
  if (system.modules.includes(byId)) return { system, moduleId: byId };
  return resolveModule(directory, principal, sys, mod, index);
}

/** `Display_2` -> Display, 2; `Display` -> Display, 1 (spec: "REST slugs"). */
export function parseModuleSlug(slug: string): { name: string; index: number } {
  const match = /^(.+)_(\d+)$/.exec(slug);
  if (!match) return { name: slug, index: 1 };
  const index = Number(match[2]);
  return index >= 1 && Number.isSafeInteger(index) ? { name: match[1]!, index } : { name: slug, index: 1 };
}
