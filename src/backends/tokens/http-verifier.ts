import { z } from 'zod';
import { GatewayError } from '../../core/errors.js';
import { isValidProfileId, profileId } from '../../core/ids.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { TokenGrant, TokenVerifier } from '../../core/token-verifier.js';
import type { TokenVerifierConfig } from '../../config/schema.js';

type HttpConfig = Extract<TokenVerifierConfig, { kind: 'http' }>;

const profileIdBody = z.object({ profileId: z.string().refine(isValidProfileId, 'not a valid profile id') });
const expiryBody = z.object({ expiresAt: z.iso.datetime({ offset: true }) });

/** The header the Privicore API reads the token from (spec: notify-protocol.md, "Tokens"). */
export const privicoreTokenHeader = 'X-DPT-AUTHORIZATION';

/**
 * Resolves tokens through the Privicore API: `GET <baseUrl>/profile/retrieve-profile-id` gives the profile,
 * `POST <baseUrl>/profile/authorization-token/expiry` its expiry; both are asked at once and both must
 * answer. The token travels only in the X-DPT-AUTHORIZATION header, never in a URL.
 *
 * 401/403 from either call: the token is invalid, expired or revoked ('unauthorized'). Anything else that
 * is not a 200 with the documented body (timeout, network error, 5xx, other 4xx, a malformed body):
 * the service cannot answer ('unavailable'), so a join gets 503 and a joined socket keeps its channel.
 */
export class HttpTokenVerifier implements TokenVerifier {
  readonly kind = 'http';
  private readonly baseUrl: string;

  constructor(
    private readonly config: HttpConfig,
    private readonly log: Logger = silentLogger,
  ) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '');
  }

  async verify(token: string): Promise<TokenGrant> {
    const [profile, expiry] = await Promise.allSettled([
      this.call('GET', '/profile/retrieve-profile-id', token, profileIdBody),
      this.call('POST', '/profile/authorization-token/expiry', token, expiryBody),
    ]);
    // A refusal from either call decides over the other call failing for another reason.
    for (const result of [profile, expiry]) {
      if (result.status === 'rejected' && (result.reason as GatewayError).code === 'unauthorized') throw result.reason;
    }
    if (profile.status === 'rejected') throw profile.reason;
    if (expiry.status === 'rejected') throw expiry.reason;
    return { profileId: profileId(profile.value.profileId), expiresAt: Date.parse(expiry.value.expiresAt) };
  }

  private async call<T>(method: 'GET' | 'POST', path: string, token: string, schema: z.ZodType<T>): Promise<T> {
    const unavailable = (reason: string, cause?: unknown): GatewayError => {
      this.log.warn({ endpoint: path, reason }, 'token service unavailable');
      return new GatewayError('unavailable', 'The token service is unavailable; try again.', { cause });
    };
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { [privicoreTokenHeader]: token, accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      status = res.status;
      // Read under the same timeout: a server that sends headers and then stalls is unavailable too.
      text = await res.text();
    } catch (err) {
      const name = (err as Error).name;
      throw unavailable(name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${this.config.timeoutMs} ms` : 'request failed', err);
    }
    if (status === 401 || status === 403) throw new GatewayError('unauthorized', 'Invalid authorization token.');
    if (status !== 200) throw unavailable(`HTTP ${status}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw unavailable('answer is not JSON');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw unavailable(`unexpected answer: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
    return parsed.data;
  }
}
