import type { FastifyInstance } from 'fastify';
import type { BackendHealth } from '../core/backend-state.js';
import { clearanceRank, type CredentialStore } from '../core/credentials.js';
import type { ModulePlacementRecord } from '../core/fleet.js';
import type { LiveSnapshot } from '../protocol/live-snapshot.js';
import { requireApiKey } from './api-key.js';
import { httpError } from './errors.js';

export interface AdminStatsDeps {
  credentials: CredentialStore;
  nodeId: string;
  /** Open sockets per channel on this node. */
  sockets: () => Record<string, number>;
  /** Profiles joined on this node with their local socket counts. */
  profiles: () => ReadonlyArray<{ profileId: string; sockets: number }>;
  backends: () => readonly BackendHealth[];
  /** The control fleet: live nodes and where each module runs (read from the fleet's store). */
  fleet: () => Promise<{ nodes: readonly string[]; modules: Record<string, ModulePlacementRecord | null> }>;
  /** The last minutes of this node for the console's charts (sockets, message rates, latency, execs). */
  live: () => LiveSnapshot;
}

/**
 * GET /api/admin/v1/stats: this node's connection counts and joined profiles, and the control fleet's live
 * nodes with the node running each module (`running: false` with a reason when it does not; `null` when no
 * node holds it), and `live`: this node's last minutes as per-interval points (rates per second, delivery
 * latency p50/p99 over each interval) for the console's charts. Needs an API key (X-API-Key or Authorization: Bearer) with admin
 * clearance. Sockets and profiles are per node: behind a load balancer each node answers for itself.
 */
export function registerAdminStats(app: FastifyInstance, deps: AdminStatsDeps): void {
  app.get('/api/admin/v1/stats', async (req) => {
    const principal = requireApiKey(req, deps.credentials);
    if (clearanceRank[principal.clearance] < clearanceRank.admin) throw httpError(403, 'this API key does not have admin clearance');
    const profiles = [...deps.profiles()].sort((a, b) => a.profileId.localeCompare(b.profileId));
    return {
      node: deps.nodeId,
      sockets: deps.sockets(),
      profiles,
      backends: Object.fromEntries(deps.backends().map((b) => [b.name, { kind: b.kind, state: b.state() }])),
      fleet: await deps.fleet().catch(() => null),
      live: deps.live(),
    };
  });
}
