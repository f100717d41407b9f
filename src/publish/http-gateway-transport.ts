import { GatewayError } from '../core/errors.js';
import type { ProfileId } from '../core/ids.js';
import type { PublishTransport } from './notification-publisher.js';

export interface HttpGatewayTransportOptions {
  /** The gateway's base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** An API key with the publish right; sent in X-API-Key. */
  apiKey: string;
  timeoutMs?: number;
}

/**
 * Publishes through a gateway's `POST /api/notify/v1/profiles/:profileId/messages`, so anything that can
 * reach the gateway over HTTP (the in-memory demo included) can be fed. The gateway then puts the message
 * on its configured broker. Its refusals map back to GatewayError codes: 400 bad_request, 401
 * unauthorized, 403 forbidden, 404 not_found (not a gateway URL); 5xx, timeouts and network errors are 'unavailable'.
 */
export class HttpGatewayTransport implements PublishTransport {
  private readonly base: string;

  constructor(private readonly options: HttpGatewayTransportOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.base}/api/notify/v1/profiles/${encodeURIComponent(profile)}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': this.options.apiKey },
        body: new Uint8Array(body),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      text = await res.text();
    } catch (err) {
      const name = (err as Error).name;
      const why = name === 'TimeoutError' ? 'did not answer in time' : 'cannot be reached';
      throw new GatewayError('unavailable', `the gateway at ${this.base} ${why}`, { cause: err });
    }
    if (res.status === 202 || res.status === 200) return;
    const reason = errorText(text) ?? `HTTP ${res.status}`;
    const code = res.status === 400 || res.status === 413 ? 'bad_request' : res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : 'unavailable';
    throw new GatewayError(code, `the gateway refused the message (HTTP ${res.status}): ${reason}`);
  }
}

/** The gateway's `{"error":"..."}` reason, if the body is one. */
function errorText(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    const error = (parsed as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : undefined;
  } catch {
    return undefined;
  }
}
