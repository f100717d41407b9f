import type { FastifyInstance } from 'fastify';
import { canReachSystem, hasClearance } from '../control/access.js';
import { reachableSystem } from '../control/targets.js';
import type { Principal } from '../core/credentials.js';
import type { DriverHost, DriverLogLine } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import type { ModuleOverrides, ModulePlacementRecord } from '../core/fleet.js';
import { type ModuleId, moduleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import type { ModuleRecord, SystemDirectory } from '../core/system-directory.js';
import { statusObjectJson } from '../protocol/control.js';

export interface ModuleAdminDeps {
  directory: SystemDirectory;
  store: StatusStore;
  host: DriverHost;
  overrides: ModuleOverrides;
  placements: (modules: readonly ModuleId[]) => Promise<Map<ModuleId, ModulePlacementRecord>>;
  /** Tells every node's placement to act now (a module stopped or started). */
  announce: () => Promise<void>;
  /** A line on the module's debug stream, wherever it runs. */
  publishLine: (line: DriverLogLine) => void;
  log: Logger;
  /** start/stop answer once the change took effect, or after this long (202). */
  settleTimeoutMs: number;
}

const apiBase = '/api/engine/v2';
/** Settings keys whose values are never shown (device passwords and the like). */
const secretKey = /pass|secret|token|key|credential/i;

/**
 * Module lifecycle over REST, as a PlaceOS front end (and `@placeos/ts-client`'s showModule, startModule,
 * stopModule, updateModule, moduleState, lookupModuleState) expects it (README "Module lifecycle").
 * Support clearance reads, admin clearance changes; every change is logged with the credential and told
 * on the module's debug stream. Registered inside the control REST scope (its authentication applies).
 */
export function registerModuleAdmin(scope: FastifyInstance, deps: ModuleAdminDeps): void {
  const moduleOf = (principal: Principal, id: string, clearance: 'support' | 'admin'): ModuleRecord => {
    if (!hasClearance(principal, clearance)) throw new GatewayError('forbidden', `this needs ${clearance} clearance`);
    const record = deps.directory.module(moduleId(id));
    if (!record) throw new GatewayError('not_found', `module not found: ${id}`);
    const reachable = deps.directory.systems().some((s) => s.modules.includes(record.id) && canReachSystem(principal, s));
    if (!reachable) throw new GatewayError('forbidden', `access denied to module ${id}`);
    return record;
  };

  const show = async (record: ModuleRecord) => {
    const [placed, override] = await Promise.all([deps.placements([record.id]), deps.overrides.get(record.id)]);
    const placement = placed.get(record.id);
    const systems = deps.directory.systems().filter((s) => s.modules.includes(record.id));
    const settings = { ...record.settings, ...override.settings };
    const running = placement?.running === true;
    const reason = override.stopped ? `stopped by ${override.stopped.by}` : running ? undefined : (placement?.reason ?? 'not placed on any node yet');
    return {
      id: record.id,
      name: record.name,
      custom_name: record.name,
      driver_id: record.driver,
      dependency_id: record.driver,
      driver: { id: record.driver, name: record.driver, module_name: record.name },
      ...(systems.length === 1 && { control_system_id: systems[0]!.id }),
      settings: redact(settings),
      running,
      stopped: override.stopped !== undefined,
      ...(placement && { node: placement.node }),
      ...(reason !== undefined && { reason }),
    };
  };

  const change = async (principal: Principal, record: ModuleRecord, stop: boolean) => {
    await deps.overrides.setStopped(record.id, stop ? { by: principal.id, at: Date.now() } : undefined);
    await deps.announce();
    const what = stop ? 'stopped' : 'started';
    deps.log.info({ module: record.id, credential: principal.id }, `module ${what} by an operator`);
    deps.publishLine({ module: record.id, level: 'info', message: `${what} by ${principal.id}` });
  };

  /**
   * Answers once the change took effect wherever the module runs (stopped: no node runs it; started: a
   * node runs it, or its load failed), or after `settleTimeoutMs` with the state as it is then.
   */
  const settled = async (modules: readonly ModuleId[], stop: boolean): Promise<boolean> => {
    const deadline = Date.now() + deps.settleTimeoutMs;
    for (;;) {
      const placed = await deps.placements(modules);
      const done = modules.every((id) => {
        const p = placed.get(id);
        return stop ? !p?.running : p !== undefined && (p.running || (p.reason !== undefined && p.reason !== 'loading'));
      });
      if (done) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  scope.get<{ Params: { id: string } }>(`${apiBase}/modules/:id`, async (req) => show(moduleOf(req.controlPrincipal!, req.params.id, 'support')));

  for (const action of ['start', 'stop'] as const) {
    scope.post<{ Params: { id: string } }>(`${apiBase}/modules/:id/${action}`, async (req, reply) => {
      const principal = req.controlPrincipal!;
      const record = moduleOf(principal, req.params.id, 'admin');
      await change(principal, record, action === 'stop');
      const done = await settled([record.id], action === 'stop');
      return reply.code(done ? 200 : 202).send(await show(record));
    });
    scope.post<{ Params: { id: string } }>(`${apiBase}/systems/:id/${action}`, async (req, reply) => {
      const principal = req.controlPrincipal!;
      if (!hasClearance(principal, 'admin')) throw new GatewayError('forbidden', 'this needs admin clearance');
      const system = reachableSystem(deps.directory, principal, req.params.id);
      for (const id of system.modules) {
        const record = deps.directory.module(id);
        if (record) await change(principal, record, action === 'stop');
      }
      const done = await settled(system.modules, action === 'stop');
      return reply.code(done ? 200 : 202).send({});
    });
  }

  scope.get<{ Params: { id: string } }>(`${apiBase}/modules/:id/state`, async (req, reply) => {
    const record = moduleOf(req.controlPrincipal!, req.params.id, 'support');
    const state = await deps.store.getAll(record.id);
    return reply.type('application/json').send(statusObjectJson(state));
  });

  scope.get<{ Params: { id: string; key: string } }>(`${apiBase}/modules/:id/state/:key`, async (req, reply) => {
    const record = moduleOf(req.controlPrincipal!, req.params.id, 'support');
    const json = await deps.store.get(record.id, req.params.key);
    if (json === undefined) throw new GatewayError('not_found', `status not set: ${req.params.key}`);
    return reply.type('application/json').send(json);
  });

  // PATCH (ts-client updateModule) and PUT: only `settings` can change at run time; the rest of a module
  // comes from the configuration file.
  for (const method of ['PATCH', 'PUT'] as const) {
    scope.route<{ Params: { id: string }; Body: unknown }>({
      method,
      url: `${apiBase}/modules/:id`,
      handler: async (req) => {
        const principal = req.controlPrincipal!;
        const record = moduleOf(principal, req.params.id, 'admin');
        const body = req.body;
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new GatewayError('bad_request', 'body must be a JSON object');
        const { settings } = body as { settings?: unknown };
        if (settings !== undefined) {
          if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new GatewayError('bad_request', 'settings must be a JSON object');
          const override = await deps.overrides.get(record.id);
          if (override.stopped) throw new GatewayError('conflict', `module ${record.id} is stopped: start it to change its settings`);
          // Merged over what the module runs with now, checked and applied by the driver where it runs.
          const next = { ...record.settings, ...override.settings, ...(settings as Record<string, unknown>) };
          await deps.host.updateSettings(record.id, next);
          await deps.overrides.setSettings(record.id, next);
          deps.log.info({ module: record.id, credential: principal.id, keys: Object.keys(settings) }, 'module settings changed by an operator');
          deps.publishLine({ module: record.id, level: 'info', message: `settings changed by ${principal.id}: ${Object.keys(settings).join(', ')}` });
        }
        return show(record);
      },
    });
  }
}

function redact(settings: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, secretKey.test(key) && value !== undefined ? '********' : value]));
}
