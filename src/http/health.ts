import type { FastifyInstance } from 'fastify';
import type { BackendHealth } from '../core/backend-state.js';

/** Which worker of how many this gateway is, and how /metrics reaches the primary's whole-machine view. */
export interface WorkerIdentity {
  index: number;
  count: number;
  clusterMetrics(): Promise<{ text: string; contentType: string }>;
}

/**
 * GET /health: the state of each backend; 200 when all are up, 503 otherwise. With several workers the
 * worker that accepted the connection answers for itself (`worker`: its index and the count): a load
 * balancer's check sees whether the process it would hand the next client to can serve it.
 */
export function registerHealth(app: FastifyInstance, nodeId: string, backends: () => readonly BackendHealth[], worker?: WorkerIdentity): void {
  app.get('/health', async (_req, reply) => {
    const states = backends().map((b) => ({ name: b.name, kind: b.kind, state: b.state() }));
    const ready = states.every((s) => s.state === 'up');
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'unavailable',
      node: nodeId,
      ...(worker && { worker: { index: worker.index, of: worker.count } }),
      backends: Object.fromEntries(states.map((s) => [s.name, { kind: s.kind, state: s.state }])),
    });
  });
}
