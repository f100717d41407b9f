import type { Principal } from '../core/credentials.js';
import { isGatewayError } from '../core/errors.js';
import type { UpgradeRefusal, UpgradeRoute } from '../transport/websocket-gateway.js';
import { authenticateControl, type ControlAuthDeps, ScopeRefusal } from './control-auth.js';
import { ControlSession, type ControlSessionDeps, type ControlSessionOptions } from './control-session.js';

export const controlPath = '/api/engine/v2/systems/control';

/** What every session gets, plus the authentication that runs before the upgrade. */
export type ControlRouteDeps = Omit<ControlSessionDeps, 'connection' | 'principal' | 'options'> & {
  auth: ControlAuthDeps;
  options: ControlSessionOptions & { maxFrameBytes: number };
};

/**
 * The control channel (spec: control-protocol.md, "Endpoint and authentication"): the credential is checked
 * before the upgrade, and a refusal is an HTTP status with `{"error":...}` (401, 403; 503 when JWT keys
 * cannot be fetched), never a WebSocket close.
 */
export function createControlRoute(deps: ControlRouteDeps): UpgradeRoute<Principal> {
  return {
    channel: 'control',
    maxPayloadBytes: deps.options.maxFrameBytes,
    async authorize(req, url) {
      const remote = req.socket.remoteAddress ?? 'unknown';
      try {
        const principal = await authenticateControl({ headers: req.headers, query: url.searchParams }, deps.auth);
        const fixedDevice = url.searchParams.get('fixed_device') === 'true';
        deps.log.info({ credential: principal.id, kind: principal.kind, remote, ...(fixedDevice && { fixedDevice }) }, 'control credential accepted');
        return { context: principal };
      } catch (err) {
        const refusal = refusalFor(err);
        if (refusal.status >= 500) deps.log.error({ err, remote }, 'control authentication failed');
        else {
          const credential = err instanceof ScopeRefusal ? err.credentialId : undefined;
          deps.log.warn({ status: refusal.status, reason: refusal.body.error, remote, ...(credential && { credential }) }, 'control connection refused');
        }
        return { refusal };
      }
    },
    credentialOf: (principal) => principal.id,
    open: (connection, principal) =>
      new ControlSession({
        connection,
        principal,
        directory: deps.directory,
        store: deps.store,
        commands: deps.commands,
        host: deps.host,
        clock: deps.clock,
        log: deps.log,
        metrics: deps.metrics,
        options: deps.options,
      }),
  };
}

function refusalFor(err: unknown): UpgradeRefusal {
  if (isGatewayError(err)) {
    if (err.code === 'unauthorized') return { status: 401, body: { error: err.message } };
    if (err.code === 'forbidden') return { status: 403, body: { error: err.message } };
    if (err.code === 'unavailable') return { status: 503, body: { error: err.message } };
  }
  return { status: 500, body: { error: 'internal error' } };
}
