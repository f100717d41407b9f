import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { canReachSystem } from '../control/access.js';
import { authenticateControl, type ControlAuthDeps, ScopeRefusal } from '../control/control-auth.js';
import type { ControlCommands, ModuleAddress } from '../control/control-commands.js';
import { parseModuleSlug, reachableSystem, resolveModule } from '../control/targets.js';
import type { Principal } from '../core/credentials.js';
import type { ModulePlacementRecord } from '../core/fleet.js';
import { GatewayError, isGatewayError } from '../core/errors.js';
import { type ModuleId, type ZoneId, zoneId as toZoneId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import type { ModuleRecord, SystemDirectory, SystemRecord, ZoneRecord } from '../core/system-directory.js';
import { statusObjectJson } from '../protocol/control.js';
import { httpStatusByCode } from '../protocol/http-status.js';
import { pathOf } from './errors.js';
import { type ModuleAdminDeps, registerModuleAdmin } from './module-admin-rest.js';

export interface ControlRestDeps {
  auth: ControlAuthDeps;
  directory: SystemDirectory;
  store: StatusStore;
  /** The command path shared with the socket (exec timeout: 504). */
  commands: ControlCommands;
  /** Where each module runs and whether it does (for `running` in module lists). */
  placements: (modules: readonly ModuleId[]) => Promise<Map<ModuleId, ModulePlacementRecord>>;
  log: Logger;
  /** Module lifecycle: show, start/stop, state, settings (module-admin-rest.ts). */
  moduleAdmin: ModuleAdminDeps;
}

export const apiBase = '/api/engine/v2';
const defaultLimit = 100;
const maxLimit = 1000;

declare module 'fastify' {
  interface FastifyRequest {
    controlPrincipal?: Principal;
  }
}

/**
 * The REST endpoints of the control channel (spec: control-protocol.md, "REST beside the socket"), with the
 * socket's credentials and access rules. Errors are `{"error":"..."}`. Values are the store's JSON text,
 * sent without re-serialising.
 */
export function registerControlRest(app: FastifyInstance, deps: ControlRestDeps): void {
  // A plain GET on the socket's path (no upgrade header reaches fastify only without one).
  app.get(`${apiBase}/systems/control`, async (_req, reply) =>
    reply.code(426).header('Upgrade', 'websocket').send({ error: 'this endpoint needs a WebSocket upgrade' }),
  );

  void app.register(async (scope) => {
    scope.addHook('preHandler', async (req) => {
      const query = new URL(req.url, 'http://gateway.invalid').searchParams;
      req.controlPrincipal = await authenticateControl({ headers: req.headers, query }, deps.auth);
    });
    scope.setErrorHandler((err, req, reply) => sendError(err, req, reply, deps.log));
    // PlaceOS clients send `Content-Type: application/json` with no body on task routes (start, stop, an
    // exec without arguments); fastify's own parser refuses an empty JSON body.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      if (body === '') return done(null, undefined);
      try {
        done(null, JSON.parse(body as string) as unknown);
      } catch {
        done(new GatewayError('parse_error', 'body is not valid JSON'), undefined);
      }
    });
    registerModuleAdmin(scope, deps.moduleAdmin);

    scope.get<{ Querystring: { q?: string; zone_id?: string; limit?: string; offset?: string } }>(`${apiBase}/systems`, async (req, reply) => {
      const principal = req.controlPrincipal!;
      const q = req.query.q?.toLowerCase();
      const zone = req.query.zone_id;
      const all = deps.directory
        .systems()
        .filter((s) => canReachSystem(principal, s))
        .filter((s) => !zone || s.zones.includes(toZoneId(zone)))
        .filter((s) => !q || [s.id, s.name, s.description ?? ''].some((t) => t.toLowerCase().includes(q)));
      const { limit, offset } = paging(req.query.limit, req.query.offset);
      return reply.header('X-Total-Count', String(all.length)).send(all.slice(offset, offset + limit).map(systemJson));
    });

    scope.get<{ Params: { id: string }; Querystring: { complete?: string } }>(`${apiBase}/systems/:id`, async (req) => {
      const system = reachableSystem(deps.directory, req.controlPrincipal!, req.params.id);
      if (req.query.complete !== 'true') return systemJson(system);
      const placed = await deps.placements(system.modules);
      return {
        ...systemJson(system),
        module_data: system.modules.map((id) => deps.directory.module(id)).filter((m): m is ModuleRecord => !!m).map((m) => moduleJson(m, system, placed)),
        zone_data: system.zones.map((id) => deps.directory.zone(id)).filter((z): z is ZoneRecord => !!z).map(zoneJson),
      };
    });

    scope.get<{ Params: { id: string } }>(`${apiBase}/systems/:id/zones`, async (req) => {
      const system = reachableSystem(deps.directory, req.controlPrincipal!, req.params.id);
      return system.zones.map((id) => deps.directory.zone(id)).filter((z): z is ZoneRecord => !!z).map(zoneJson);
    });

    scope.get<{ Params: { id: string; slug: string } }>(`${apiBase}/systems/:id/functions/:slug`, async (req) =>
      deps.commands.functions(req.controlPrincipal!, address(req.params.id, req.params.slug)),
    );

    scope.get<{ Params: { id: string; slug: string } }>(`${apiBase}/systems/:id/:slug`, async (req, reply) => {
      const { moduleId } = target(deps, req.controlPrincipal!, req.params.id, req.params.slug);
      const state = await deps.store.getAll(moduleId);
      return reply.type('application/json').send(statusObjectJson(state));
    });

    scope.get<{ Params: { id: string; slug: string; key: string } }>(`${apiBase}/systems/:id/:slug/:key`, async (req, reply) => {
      const { moduleId } = target(deps, req.controlPrincipal!, req.params.id, req.params.slug);
      const json = await deps.store.get(moduleId, req.params.key);
      if (json === undefined) throw new GatewayError('not_found', `status not set: ${req.params.key}`);
      return reply.type('application/json').send(json);
    });

    scope.post<{ Params: { id: string; slug: string; method: string } }>(`${apiBase}/systems/:id/:slug/:method`, async (req, reply) => {
      const args = req.body === undefined || req.body === null ? [] : req.body;
      if (!Array.isArray(args)) throw new GatewayError('bad_request', 'body must be a JSON array of arguments');
      const result = await deps.commands.exec(req.controlPrincipal!, address(req.params.id, req.params.slug), req.params.method, args);
      return reply.code(result.code >= 100 && result.code < 600 ? result.code : 200).type('application/json').send(result.json);
    });

    scope.get<{ Querystring: { q?: string; limit?: string; offset?: string } }>(`${apiBase}/zones`, async (req, reply) => {
      const principal = req.controlPrincipal!;
      const q = req.query.q?.toLowerCase();
      const all = deps.directory
        .zones()
        .filter((z) => canReachZone(deps.directory, principal, z.id))
        .filter((z) => !q || [z.id, z.name, z.description ?? ''].some((t) => t.toLowerCase().includes(q)));
      const { limit, offset } = paging(req.query.limit, req.query.offset);
      return reply.header('X-Total-Count', String(all.length)).send(all.slice(offset, offset + limit).map(zoneJson));
    });

    scope.get<{ Params: { id: string } }>(`${apiBase}/zones/:id`, async (req) => {
      const zone = deps.directory.zone(toZoneId(req.params.id));
      if (!zone) throw new GatewayError('not_found', `zone not found: ${req.params.id}`);
      if (!canReachZone(deps.directory, req.controlPrincipal!, zone.id)) throw new GatewayError('forbidden', `access denied to zone ${req.params.id}`);
      return zoneJson(zone);
    });

    scope.get<{ Querystring: { control_system_id?: string; limit?: string; offset?: string } }>(`${apiBase}/modules`, async (req, reply) => {
      const principal = req.controlPrincipal!;
      const systems = req.query.control_system_id
        ? [reachableSystem(deps.directory, principal, req.query.control_system_id)]
        : deps.directory.systems().filter((s) => canReachSystem(principal, s));
      const seen = new Set<ModuleId>();
      const found: Array<{ mod: ModuleRecord; system: SystemRecord }> = [];
      for (const system of systems) {
        for (const id of system.modules) {
          const mod = deps.directory.module(id);
          if (!mod || seen.has(id)) continue;
          seen.add(id);
          found.push({ mod, system });
        }
      }
      const placed = await deps.placements([...seen]);
      const all = found.map(({ mod, system }) => moduleJson(mod, system, placed));
      const { limit, offset } = paging(req.query.limit, req.query.offset);
      return reply.header('X-Total-Count', String(all.length)).send(all.slice(offset, offset + limit));
    });
  });
}

function target(deps: ControlRestDeps, principal: Principal, sys: string, slug: string) {
  const { mod, index } = address(sys, slug);
  return resolveModule(deps.directory, principal, sys, mod, index);
}

function address(sys: string, slug: string): ModuleAddress {
  const { name, index } = parseModuleSlug(slug);
  return { sys, mod: name, index };
}

function canReachZone(directory: SystemDirectory, principal: Principal, zone: ZoneId): boolean {
  if (principal.systems.includes('*') || principal.zones.includes(zone)) return true;
  return directory.systems().some((s) => s.zones.includes(zone) && canReachSystem(principal, s));
}

function paging(limitText: string | undefined, offsetText: string | undefined): { limit: number; offset: number } {
  const limit = limitText === undefined ? defaultLimit : Number(limitText);
  const offset = offsetText === undefined ? 0 : Number(offsetText);
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit) throw new GatewayError('bad_request', `limit must be an integer from 1 to ${maxLimit}`);
  if (!Number.isInteger(offset) || offset < 0) throw new GatewayError('bad_request', 'offset must be a non-negative integer');
  return { limit, offset };
}

const systemJson = (s: SystemRecord) => ({
  id: s.id,
  name: s.name,
  ...(s.description !== undefined && { description: s.description }),
  zones: s.zones,
  modules: s.modules,
});

const zoneJson = (z: ZoneRecord) => ({ id: z.id, name: z.name, ...(z.description !== undefined && { description: z.description }) });

/** Settings are left out: they may hold device passwords. */
const moduleJson = (m: ModuleRecord, system: SystemRecord, placed: ReadonlyMap<ModuleId, ModulePlacementRecord>) => ({
  id: m.id,
  name: m.name,
  driver: m.driver,
  control_system_id: system.id,
  running: placed.get(m.id)?.running === true,
});

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply, log: Logger): FastifyReply {
  const path = pathOf(req.url);
  const credential = req.controlPrincipal?.id ?? (err instanceof ScopeRefusal ? err.credentialId : undefined);
  if (isGatewayError(err)) {
    const status = httpStatusByCode[err.code];
    if (status === 401 || status === 403) log.warn({ status, method: req.method, path, credential, remote: req.ip, reason: err.message }, 'control REST refused');
    else log.info({ status, method: req.method, path, credential, reason: err.message }, 'control REST error');
    return reply.code(status).send({ error: err.message });
  }
  const status = (err as { statusCode?: number }).statusCode;
  if (status && status >= 400 && status < 500) return reply.code(status).send({ error: (err as Error).message });
  log.error({ err, method: req.method, path }, 'control REST failed');
  return reply.code(500).send({ error: 'internal error' });
}
