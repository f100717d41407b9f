import type { TokenVerifierConfig } from '../../config/schema.js';
import type { TokenVerifier } from '../../core/token-verifier.js';
import { StaticTokenVerifier } from './static-verifier.js';

/** Picks the verifier the configuration names. */
export function createTokenVerifier(config: TokenVerifierConfig, configFile?: string): TokenVerifier {
  switch (config.kind) {
    case 'static':
      return new StaticTokenVerifier(config, configFile);
    default:
      throw new Error(`tokens.kind "${config.kind}" is not available in this build`);
  }
}
