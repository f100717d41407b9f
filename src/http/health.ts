import type { FastifyInstance } from 'fastify';
import type { BackendHealth } from '../core/backend-state.js';

/** GET /health: the state of each backend; 200 when all are up, 503 otherwise. */
export function registerHealth(app: FastifyInstance, nodeId: string, backends: () => readonly BackendHealth[]): void {
  app.get('/health', async (_req, reply) => {
    const states = backends().map((b) => ({ name: b.name, kind: b.kind, state: b.state() }));
    const ready = states.every((s) => s.state === 'up');
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ok' : 'unavailable',
      node: nodeId,
      backends: Object.fromEntries(states.map((s) => [s.name, { kind: s.kind, state: s.state }])),
    });
  });
}
