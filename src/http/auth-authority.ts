import type { FastifyInstance } from 'fastify';

/**
 * GET /auth/authority (no authentication; spec: control-protocol.md, "Endpoint and authentication").
 * ts-client reads it before connecting: `version` must look like 2.x.y for it to use /api/engine/v2, and
 * `session: false` tells it there is no login session here (credentials come as API keys or JWTs).
 */
export function registerAuthAuthority(app: FastifyInstance): void {
  app.get('/auth/authority', async (req) => {
    const domain = typeof req.headers.host === 'string' ? req.headers.host : 'localhost';
    return {
      id: 'authority-switchboard',
      name: domain,
      domain,
      login_url: '/login?continue={{url}}',
      logout_url: '/logout',
      config: {},
      version: 'v2.0.0',
      session: false,
      production: false,
    };
  });
}
