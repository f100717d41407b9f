import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { type Clock, systemClock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import { profileId } from '../../core/ids.js';
import type { TokenGrant, TokenVerifier } from '../../core/token-verifier.js';
import type { TokenVerifierConfig } from '../../config/schema.js';

type StaticConfig = Extract<TokenVerifierConfig, { kind: 'static' }>;

/**
 * Tokens from the configuration (inline map and/or a JSON file of token -> profile id), for development
 * and demos. Optional per-token expiry. The file is read once at start.
 */
export class StaticTokenVerifier implements TokenVerifier {
  readonly kind = 'static';
  private readonly grants = new Map<string, TokenGrant>();

  constructor(
    config: StaticConfig,
    configFile?: string,
    /** Expiry is judged on the gateway's clock, so a test moves it instead of waiting. */
    private readonly clock: Clock = systemClock,
  ) {
    const tokens: Record<string, string> = { ...config.tokens };
    if (config.file) {
      const path = resolve(configFile ? dirname(configFile) : process.cwd(), config.file);
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new Error(`tokens.file: cannot read ${path}: ${(err as Error).message}`);
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`tokens.file: ${path} must hold a JSON object of token -> profile id`);
      for (const [token, profile] of Object.entries(parsed)) {
        if (typeof profile !== 'string' || profile.length === 0) throw new Error(`tokens.file: ${path}: the profile id of an entry is not a non-empty string`);
        tokens[token] = profile;
      }
    }
    for (const [token, profile] of Object.entries(tokens)) {
      const expiry = config.expiresAt[token];
      const expiresAt = expiry === undefined ? undefined : typeof expiry === 'number' ? expiry : Date.parse(expiry);
      if (expiresAt !== undefined && Number.isNaN(expiresAt)) throw new Error(`tokens.expiresAt: an entry is not a date`);
      this.grants.set(token, { profileId: profileId(profile), ...(expiresAt !== undefined && { expiresAt }) });
    }
  }

  async verify(token: string): Promise<TokenGrant> {
    const grant = this.grants.get(token);
    if (!grant) throw new GatewayError('unauthorized', 'Invalid authorization token.');
    if (grant.expiresAt !== undefined && grant.expiresAt <= this.clock.now()) throw new GatewayError('unauthorized', 'Authorization token expired.');
    return grant;
  }

  /** Demo configurations ship well-known tokens; the app warns when they are in use. */
  get size(): number {
    return this.grants.size;
  }
}
