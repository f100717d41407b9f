import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../observability/metrics.js';

/**
 * GET /metrics: every GatewayMetrics series in the Prometheus text format. Unauthenticated, like /health:
 * it holds counts only (no ids, tokens or payloads); restrict it at the network edge if needed.
 */
export function registerMetrics(app: FastifyInstance, metrics: GatewayMetrics): void {
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.code(200).header('content-type', metrics.registry.contentType).send(text);
  });
}
