import type { ProfileId } from './ids.js';

export interface TokenGrant {
  profileId: ProfileId;
  /** Epoch milliseconds after which the token is no longer valid; undefined when it does not expire. */
  expiresAt?: number;
}

/**
 * Resolves a notification-channel authorization token to a profile (spec: notify-protocol.md, "Tokens").
 * Rejects with GatewayError('unauthorized') for an invalid, expired or revoked token and with
 * GatewayError('unavailable') when the service behind it cannot answer. Never logs the token.
 * Caching is a wrapper (backends/tokens/caching-verifier.ts), not a feature of each verifier.
 */
export interface TokenVerifier {
  readonly kind: string;
  verify(token: string): Promise<TokenGrant>;
  close?(): Promise<void>;
}
