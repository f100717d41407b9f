import { type Clearance, clearanceRank, type Principal } from '../core/credentials.js';
import type { SystemRecord } from '../core/system-directory.js';

/**
 * Who may reach what (spec: control-protocol.md, "Endpoint and authentication" and error 2). Pure, shared
 * by the socket sessions and the REST endpoints.
 */

/** A system is reachable when the credential lists it (or `*`) or lists one of the system's zones. */
export function canReachSystem(principal: Principal, system: Pick<SystemRecord, 'id' | 'zones'>): boolean {
  if (principal.systems.includes('*') || principal.systems.includes(system.id)) return true;
  return system.zones.some((zone) => principal.zones.includes(zone));
}

export const hasClearance = (principal: Principal, required: Clearance): boolean =>
  clearanceRank[principal.clearance] >= clearanceRank[required];

/** Names starting with `_` are internal to the runtime (PlaceOS: protected modules and methods). */
export const isProtectedName = (name: string): boolean => name.startsWith('_');

/** The scopes that allow the control channel: `control` or `public`, with write access (no suffix = all). */
export function hasControlScope(scopes: readonly string[]): boolean {
  return scopes.some((scope) => {
    const [resource, access] = scope.split('.', 2);
    if (resource !== 'control' && resource !== 'public') return false;
    return access === undefined || access === 'write' || access === 'all';
  });
}
