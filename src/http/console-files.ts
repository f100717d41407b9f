import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../core/logger.js';

/** Where `npm run build` puts the console (vite build of console/), relative to dist/src/http. */
export const defaultConsoleDir = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

/**
 * Serves the web console's built files at /console/ (index.html for /console). When the console was not
 * built, /console answers 503 with the reason instead of failing the gateway.
 */
export function registerConsoleFiles(app: FastifyInstance, deps: { dir?: string; log: Logger }): void {
  const dir = deps.dir ?? defaultConsoleDir;
  app.get('/console', async (_req, reply) => reply.redirect('/console/'));
  if (!existsSync(`${dir}/index.html`)) {
    deps.log.warn({ dir }, 'web console not built (run npm run build); /console is unavailable');
    app.get('/console/*', async (_req, reply) => reply.code(503).send({ error: 'the web console was not built; run npm run build' }));
    return;
  }
  void app.register(fastifyStatic, { root: dir, prefix: '/console/', index: 'index.html', wildcard: true, cacheControl: true, maxAge: 0 });
}
