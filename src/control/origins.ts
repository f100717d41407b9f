import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether a browser request from `Origin` may use an ambient credential (a cookie, or a key in the URL):
 * only from the gateway's own origin (the `Origin` host equal to the request's `Host`) or one listed in
 * `allowedOrigins` (`*`: any). A request without `Origin` did not come from a cross-site page.
 * Spec: control-protocol.md, "Limits".
 */
export function originAllowed(headers: IncomingHttpHeaders, allowedOrigins: readonly string[]): boolean {
  const origin = typeof headers.origin === 'string' ? headers.origin : undefined;
  if (origin === undefined) return true;
  if (allowedOrigins.includes('*') || allowedOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}
