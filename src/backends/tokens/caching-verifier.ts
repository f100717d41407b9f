import { createHash } from 'node:crypto';
import { type Clock, systemClock } from '../../core/clock.js';
import { GatewayError, isGatewayError } from '../../core/errors.js';
import type { TokenGrant, TokenVerifier } from '../../core/token-verifier.js';

export interface CachingOptions {
  /** How long an answer is reused; 0 turns the cache off. */
  ttlMs: number;
  /** Bound on cached tokens; the least recently used is dropped first. */
  maxEntries: number;
  clock?: Clock;
}

type Entry = { until: number; grant: TokenGrant } | { until: number; refusal: GatewayError };

/**
 * Remembers a verifier's answers for a short while, so reconnect storms and revalidation of many sockets
 * holding the same token do not each call the token service (spec: "Results are cached briefly").
 *
 * - Keyed by the SHA-256 of the token: the token itself is never kept as a key.
 * - A grant is cached until min(now + ttlMs, expiresAt): a cached grant never outlives its token.
 * - 'unauthorized' refusals are cached too (a bad token stays bad); 'unavailable' and any other failure
 *   are not, so the next attempt asks the service again.
 * - Concurrent verifications of one token share a single call to the inner verifier.
 * - Revocation is seen at most ttlMs late.
 */
export class CachingTokenVerifier implements TokenVerifier {
  readonly kind: string;
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<TokenGrant>>();
  private readonly clock: Clock;

  constructor(
    private readonly inner: TokenVerifier,
    private readonly options: CachingOptions,
  ) {
    this.kind = inner.kind;
    this.clock = options.clock ?? systemClock;
  }

  async verify(token: string): Promise<TokenGrant> {
    if (this.options.ttlMs <= 0) return this.inner.verify(token);
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.clock.now();
    const cached = this.entries.get(key);
    if (cached) {
      this.entries.delete(key);
      if (cached.until > now) {
        this.entries.set(key, cached); // most recently used goes last
        if ('refusal' in cached) throw cached.refusal;
        return cached.grant;
      }
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const call = this.inner.verify(token).then(
      (grant) => {
        const until = Math.min(this.clock.now() + this.options.ttlMs, grant.expiresAt ?? Number.POSITIVE_INFINITY);
        this.remember(key, { until, grant });
        return grant;
      },
      (err: unknown) => {
        if (isGatewayError(err) && err.code === 'unauthorized') this.remember(key, { until: this.clock.now() + this.options.ttlMs, refusal: err });
        throw err;
      },
    );
    this.inFlight.set(key, call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Number of cached answers (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.entries.clear();
    await this.inner.close?.();
  }

  private remember(key: string, entry: Entry): void {
    this.entries.delete(key);
    if (entry.until <= this.clock.now()) return;
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }
}
