import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { GatewayError } from '../../core/errors.js';
import { isValidProfileId, profileId } from '../../core/ids.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { TokenGrant, TokenVerifier } from '../../core/token-verifier.js';
import type { TokenVerifierConfig } from '../../config/schema.js';

type JwtConfig = Extract<TokenVerifierConfig, { kind: 'jwt' }>;

/** JOSE failures that mean "the key set could not be fetched", not "the token is bad". */
const keySetFailures = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

/**
 * Verifies signed JWTs with jose: an HS256 shared secret, a PEM public key (RS256/ES256/..., the algorithm
 * follows the key unless `algorithms` says otherwise) or a JWKS URL (keys fetched, cached and refreshed
 * by jose's createRemoteJWKSet). The profile id is the configured claim (default `sub`), `exp` becomes
 * the grant's expiry; a token without `exp` does not expire. `issuer`/`audience` are checked when set.
 *
 * Any token problem is 'unauthorized'; only a JWKS endpoint that cannot be read is 'unavailable'.
 */
export class JwtTokenVerifier implements TokenVerifier {
  readonly kind = 'jwt';
  private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  private readonly algorithms: string[] | undefined;
  private readonly remote: boolean;

  constructor(
    private readonly config: JwtConfig,
    private readonly log: Logger = silentLogger,
  ) {
    this.remote = config.jwksUrl !== undefined;
    if (config.secret !== undefined) {
      this.key = new TextEncoder().encode(config.secret);
      this.algorithms = config.algorithms ?? ['HS256'];
    } else if (config.publicKeyPem !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey(config.publicKeyPem);
      } catch {
        throw new Error('tokens.publicKeyPem: not a PEM public key');
      }
      this.key = key;
      this.algorithms = config.algorithms ?? algorithmsFor(key);
    } else {
      this.key = createRemoteJWKSet(new URL(config.jwksUrl!), { timeoutDuration: config.timeoutMs });
      this.algorithms = config.algorithms;
    }
  }

  async verify(token: string): Promise<TokenGrant> {
    let payload: Record<string, unknown>;
    try {
      const verified = await jwtVerify(token, this.key as Parameters<typeof jwtVerify>[1], {
        ...(this.algorithms && { algorithms: this.algorithms }),
        // A token without `exp` would never expire: refused unless the operator says otherwise.
        ...(!this.config.allowNoExpiry && { requiredClaims: ['exp'] }),
        ...(this.config.issuer !== undefined && { issuer: this.config.issuer }),
        ...(this.config.audience !== undefined && { audience: this.config.audience }),
      });
      payload = verified.payload;
    } catch (err) {
      throw this.classify(err);
    }
    const claim = payload[this.config.profileClaim];
    if (!isValidProfileId(claim)) {
      throw new GatewayError('unauthorized', 'Authorization token names no valid profile.');
    }
    return {
      profileId: profileId(claim),
      ...(typeof payload.exp === 'number' && { expiresAt: payload.exp * 1000 }),
    };
  }

  private classify(err: unknown): GatewayError {
    const code = err instanceof joseErrors.JOSEError ? err.code : undefined;
    if (this.remote && (code === undefined || keySetFailures.has(code))) {
      // A network failure (fetch TypeError), timeout, non-200 or non-JSON answer from the JWKS URL.
      this.log.warn({ reason: code ?? (err as Error).name ?? 'error' }, 'token key set unavailable');
      return new GatewayError('unavailable', 'The token service is unavailable; try again.', { cause: err });
    }
    if (code === 'ERR_JWT_EXPIRED') return new GatewayError('unauthorized', 'Authorization token expired.');
    this.log.debug({ reason: code ?? 'not a JWT' }, 'token refused');
    return new GatewayError('unauthorized', 'Invalid authorization token.');
  }
}

/** The algorithm a public key signs with, so a PEM key needs no extra setting. */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      throw new Error(`tokens.publicKeyPem: unsupported EC curve ${String(curve)}`);
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new Error(`tokens.publicKeyPem: unsupported key type ${String(key.asymmetricKeyType)}`);
  }
}
