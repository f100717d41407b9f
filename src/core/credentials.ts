import type { SystemId, ZoneId } from './ids.js';

export type Clearance = 'user' | 'support' | 'admin';
export const clearanceRank: Record<Clearance, number> = { user: 0, support: 1, admin: 2 };

/** Who is calling an HTTP endpoint or the control channel, after authentication. Never holds the secret. */
export interface Principal {
  /** Stable, loggable id of the credential (API key id or JWT subject). */
  id: string;
  kind: 'api-key' | 'jwt';
  clearance: Clearance;
  /** May publish notification messages (POST /api/notify/v1/...). */
  canPublish: boolean;
  /** Systems reachable; '*' means every system. */
  systems: ReadonlyArray<SystemId | '*'>;
  /** Zones whose systems are reachable. */
  zones: ReadonlyArray<ZoneId>;
  /** OAuth-like scopes (PlaceOS: `public`, `control`, ...). */
  scopes: ReadonlyArray<string>;
}

/**
 * Looks up API keys. Implementations compare secrets in constant time and may store only their hashes.
 * Returns undefined for an unknown key.
 */
export interface CredentialStore {
  findApiKey(secret: string): Principal | undefined;
}

/**
 * Verifies a JWT (signature, expiry, issuer/audience when configured) and maps its claims to a Principal.
 * Rejects with GatewayError('unauthorized') for a bad, expired or malformed token and with
 * GatewayError('unavailable') when the key set cannot be fetched. Never logs the token.
 */
export interface JwtAuthenticator {
  verify(jwt: string): Promise<Principal>;
}
