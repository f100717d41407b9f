import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { ControlJwtConfig } from '../../config/control-jwt-schema.js';
import type { Clearance, JwtAuthenticator, Principal } from '../../core/credentials.js';
import { GatewayError } from '../../core/errors.js';
import type { SystemId, ZoneId } from '../../core/ids.js';

/**
 * PlaceOS JWTs (HS256 secret, RS256 PEM public key, or JWKS URL) -> Principal.
 * Claims: `sub` is the credential id; `scope` an array or a space-separated string; `u.p` the PlaceOS
 * permissions flags (bit 0 support, bit 1 admin: User=0, Support=1, Admin=2, AdminSupport=3).
 */
export class PlaceJwtAuthenticator implements JwtAuthenticator {
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly algorithms: string[];

  constructor(private readonly config: ControlJwtConfig) {
    if (config.secret) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = config.algorithms ?? ['HS256'];
    } else if (config.publicKeyPem) {
      this.key = createPublicKey(config.publicKeyPem.replace(/\\n/g, '\n'));
      this.algorithms = config.algorithms ?? ['RS256'];
    } else {
      this.key = createRemoteJWKSet(new URL(config.jwksUrl!));
      this.algorithms = config.algorithms ?? ['RS256'];
    }
  }

  async verify(jwt: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      const options = {
        algorithms: this.algorithms,
        clockTolerance: this.config.clockToleranceSec,
        // A token without `exp` would never expire: refused unless the operator says otherwise.
        ...(!this.config.allowNoExpiry && { requiredClaims: ['exp'] }),
        ...(this.config.issuer && { issuer: this.config.issuer }),
        ...(this.config.audience && { audience: this.config.audience }),
      };
      const result =
        typeof this.key === 'function' ? await jwtVerify(jwt, this.key, options) : await jwtVerify(jwt, this.key, options);
      payload = result.payload;
    } catch (err) {
      throw translate(err);
    }
    return principalFromClaims(payload, this.config);
  }
}

export function principalFromClaims(payload: JWTPayload, config: Pick<ControlJwtConfig, 'systems' | 'zones'>): Principal {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new GatewayError('unauthorized', 'token has no subject (sub)');
  const clearance = clearanceFromPermissions((payload.u as { p?: unknown } | undefined)?.p);
  return {
    id: payload.sub,
    kind: 'jwt',
    clearance,
    canPublish: false,
    systems: clearance === 'admin' ? ['*'] : (config.systems as Array<SystemId | '*'>),
    zones: config.zones as ZoneId[],
    scopes: scopesOf(payload.scope),
  };
}

/** PlaceOS `u.p`: a number (flags) or, in some issuers, the enum name. Anything else is plain user. */
export function clearanceFromPermissions(p: unknown): Clearance {
  if (typeof p === 'number' && Number.isInteger(p)) {
    if (p & 2) return 'admin';
    if (p & 1) return 'support';
    return 'user';
  }
  if (typeof p === 'string') {
    const name = p.toLowerCase();
    if (name.includes('admin')) return 'admin';
    if (name === 'support') return 'support';
  }
  return 'user';
}

export function scopesOf(scope: unknown): string[] {
  if (Array.isArray(scope)) return scope.filter((s): s is string => typeof s === 'string' && s.length > 0);
  if (typeof scope === 'string') return scope.split(/\s+/).filter(Boolean);
  return [];
}

function translate(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof errors.JWTExpired) return new GatewayError('unauthorized', 'token expired');
  if (err instanceof errors.JWKSTimeout || (err instanceof Error && /fetch|ECONNREFUSED|network/i.test(err.message) && !(err instanceof errors.JOSEError))) {
    return new GatewayError('unavailable', 'token keys unavailable');
  }
  if (err instanceof errors.JWTClaimValidationFailed) return new GatewayError('unauthorized', `token rejected: ${err.claim} claim check failed`);
  return new GatewayError('unauthorized', 'invalid token');
}
