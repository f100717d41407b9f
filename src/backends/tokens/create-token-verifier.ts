import type { TokenVerifierConfig } from '../../config/schema.js';
import { type Clock, systemClock } from '../../core/clock.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { TokenVerifier } from '../../core/token-verifier.js';
import { HttpTokenVerifier } from './http-verifier.js';
import { JwtTokenVerifier } from './jwt-verifier.js';
import { StaticTokenVerifier } from './static-verifier.js';

/** Picks the verifier the configuration names (`tokens.kind`). Caching is added by the caller. */
export function createTokenVerifier(config: TokenVerifierConfig, configFile?: string, log: Logger = silentLogger, clock: Clock = systemClock): TokenVerifier {
  switch (config.kind) {
    case 'static':
      return new StaticTokenVerifier(config, configFile, clock);
    case 'http':
      return new HttpTokenVerifier(config, log);
    case 'jwt':
      return new JwtTokenVerifier(config, log);
  }
}
