import type { FastifyInstance } from 'fastify';
import { originAllowed } from '../control/origins.js';

/**
 * CORS by the same list as the cross-site check (`allowedOrigins`): a preflight from an allowed origin gets
 * 204 with what it asked for; from any other, 403. Answers to allowed cross-origin requests say so
 * (`Access-Control-Allow-Origin`), so their pages can read them; others get no CORS headers and the
 * browser keeps the answer from the page.
 */
export function registerCors(app: FastifyInstance, allowedOrigins: readonly string[]): void {
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return;
    const allowed = originAllowed(req.headers, allowedOrigins);
    if (allowed) void reply.header('Access-Control-Allow-Origin', origin).header('Vary', 'Origin').header('Access-Control-Allow-Credentials', 'true');
    if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return;
    if (!allowed) return reply.code(403).send({ error: `origin ${origin} is not allowed (allowedOrigins)` });
    return reply
      .code(204)
      .header('Access-Control-Allow-Methods', 'GET, POST, PATCH, PUT, DELETE')
      .header('Access-Control-Allow-Headers', 'Content-Type, X-API-Key, Authorization')
      .header('Access-Control-Max-Age', '600')
      .send();
  });
}
