import type { FastifyRequest } from 'fastify';
import type { CredentialStore, Principal } from '../core/credentials.js';
import { httpError } from './errors.js';

/** The API key of a request: header `X-API-Key`, else `Authorization: Bearer <key>`. */
export function presentedApiKey(req: FastifyRequest): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim() || undefined;
  return undefined;
}

/** Resolves the request's API key or throws 401. */
export function requireApiKey(req: FastifyRequest, store: CredentialStore): Principal {
  const key = presentedApiKey(req);
  if (!key) throw httpError(401, 'missing API key (X-API-Key header or Authorization: Bearer)');
  const principal = store.findApiKey(key);
  if (!principal) throw httpError(401, 'unknown API key');
  return principal;
}
