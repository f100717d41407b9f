import type { IncomingHttpHeaders } from 'node:http';
import type { CredentialStore, JwtAuthenticator, Principal } from '../core/credentials.js';
import { GatewayError } from '../core/errors.js';
import { originAllowed } from './origins.js';
import { hasControlScope } from './access.js';

export interface ControlAuthDeps {
  credentials: CredentialStore;
  /** Unset: JWTs are refused (no key configured). */
  jwt?: JwtAuthenticator;
  /** Origins (besides the gateway's own) whose pages may use cookie or query credentials; `*`: any. */
  allowedOrigins: readonly string[];
}

/** What a request carries that may hold a credential. */
export interface CredentialCarrier {
  headers: IncomingHttpHeaders;
  query: URLSearchParams;
}

/**
 * Authenticates a control-channel request (the WebSocket upgrade and the REST endpoints), in the spec's order
 * (control-protocol.md, "Endpoint and authentication"): API key in header `X-API-Key`, query `api-key` or
 * cookie `api-key`; else a JWT in `Authorization: Bearer`, query `bearer_token` or cookie `bearer_token`.
 * Rejects with GatewayError 'unauthorized' (no or bad credential), 'forbidden' (no `control`/`public` write
 * scope) or 'unavailable' (JWT keys cannot be fetched). Messages never contain the credential.
 */
export async function authenticateControl(carrier: CredentialCarrier, deps: ControlAuthDeps): Promise<Principal> {
  const principal = await identify(carrier, deps);
  if (!hasControlScope(principal.scopes)) throw new ScopeRefusal(principal.id);
  return principal;
}

/** A valid credential without the control scope: 403, logged with the credential's id. */
export class ScopeRefusal extends GatewayError {
  constructor(readonly credentialId: string) {
    super('forbidden', 'credential lacks the control or public scope');
  }
}

async function identify({ headers, query }: CredentialCarrier, deps: ControlAuthDeps): Promise<Principal> {
  const cookies = parseCookies(headers.cookie);
  const fromHeader = header(headers, 'x-api-key');
  const apiKey = firstNonEmpty(fromHeader, query.get('api-key'), cookies.get('api-key'));
  // A browser sends cookies (and follows URLs) to any site on its own: such a credential counts only for a
  // request from the gateway's own origin or an allowed one. Headers are never sent cross-site unasked.
  const crossSite = () => {
    if (!originAllowed(headers, deps.allowedOrigins)) {
      throw new GatewayError('forbidden', `cross-site request refused: origin ${String(headers.origin)} may not use cookie or query credentials (allowedOrigins)`);
    }
  };
  if (apiKey !== undefined) {
    if (!fromHeader) crossSite();
    const principal = deps.credentials.findApiKey(apiKey);
    if (!principal) throw new GatewayError('unauthorized', 'unknown API key');
    return principal;
  }
  const authorization = header(headers, 'authorization');
  const bearer = authorization && /^bearer\s+/i.test(authorization) ? authorization.replace(/^bearer\s+/i, '').trim() : undefined;
  const jwt = firstNonEmpty(bearer, query.get('bearer_token'), cookies.get('bearer_token'));
  if (jwt === undefined) {
    throw new GatewayError('unauthorized', 'missing credential: X-API-Key header, api-key query or cookie, or a bearer token');
  }
  if (!bearer) crossSite();
  if (!deps.jwt) throw new GatewayError('unauthorized', 'bearer tokens are not accepted here (no JWT key configured)');
  return deps.jwt.verify(jwt);
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const firstNonEmpty = (...values: Array<string | null | undefined>): string | undefined =>
  values.find((v): v is string => typeof v === 'string' && v.length > 0);

/** `a=1; b=2` -> Map; values are URI-decoded when they can be. */
export function parseCookies(text: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!text) return cookies;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // Keep the raw text: a cookie that is not URI-encoded is still a cookie.
    }
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}
