import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../observability/metrics.js';

/**
 * GET /metrics: every GatewayMetrics series in the Prometheus text format. Unauthenticated, like /health:
 * it holds counts only (no ids, tokens or payloads); restrict it at the network edge if needed. With
 * several workers, `cluster` answers instead: every worker's series and the primary's, labelled `worker`
 * (cluster/cluster-metrics.ts); `?scope=worker` gives only the worker that accepted the connection.
 */
export function registerMetrics(app: FastifyInstance, metrics: GatewayMetrics, cluster?: () => Promise<{ text: string; contentType: string }>): void {
  app.get<{ Querystring: { scope?: string } }>('/metrics', async (req, reply) => {
    if (cluster && req.query.scope !== 'worker') {
      const { text, contentType } = await cluster();
      return reply.code(200).header('content-type', contentType).send(text);
    }
    const text = await metrics.registry.metrics();
    return reply.code(200).header('content-type', metrics.registry.contentType).send(text);
  });
}
