import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import { RateLimiter } from '../core/rate-limiter.js';

/**
 * Exec rate per credential, over all its sockets and REST calls (spec "Limits"): a token bucket per
 * credential id, the least recently used forgotten past `maxCredentials` so the map stays bounded.
 */
export class ExecRateLimits {
  private readonly buckets = new Map<string, RateLimiter>();

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
    private readonly maxCredentials = 10_000,
  ) {}

  /** Throws GatewayError('rate_limited', 'too many requests') when the credential is over its rate. */
  take(credentialId: string): void {
    let bucket = this.buckets.get(credentialId);
    if (bucket) this.buckets.delete(credentialId);
    else bucket = new RateLimiter(this.perSecond, this.perSecond * 2, this.clock);
    this.buckets.set(credentialId, bucket);
    if (this.buckets.size > this.maxCredentials) this.buckets.delete(this.buckets.keys().next().value!);
    if (!bucket.take()) throw new GatewayError('rate_limited', 'too many requests');
  }
}
