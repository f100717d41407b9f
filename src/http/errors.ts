import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from '../core/logger.js';

/** Every HTTP error is `{"error":"<reason>"}` with its status; a 5xx is logged with its stack, never sent. */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) log.error({ err, method: req.method, path: pathOf(req.url) }, 'request failed');
    else log.info({ status, method: req.method, path: pathOf(req.url), reason: err.message }, 'request refused');
    void reply.code(status).send({ error: status >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route for ${req.method} ${pathOf(req.url)}` });
  });
}

/** The path without its query: queries may carry credentials (`api-key`, `bearer_token`). */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export function httpError(status: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: status });
}
