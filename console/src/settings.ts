/**
 * The API key field in the header; every panel reads it from here. Kept for the tab's session only
 * (sessionStorage), so a key does not outlive the browser session.
 */
const input = document.querySelector<HTMLInputElement>('#api-key')!;
input.value = sessionStorage.getItem('switchboard.apiKey') ?? '';
input.addEventListener('change', () => sessionStorage.setItem('switchboard.apiKey', input.value));

export const apiKey = (): string => input.value.trim();
export const onApiKeyChange = (listener: () => void): void => input.addEventListener('change', listener);

/** The gateway serving this page. */
export const gatewayHttp = location.origin;
export const gatewayWs = location.origin.replace(/^http/, 'ws');

/** fetch() against the gateway with the API key; resolves with the JSON body or rejects with its `error`. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${gatewayHttp}${path}`, {
    ...init,
    headers: { 'x-api-key': apiKey(), ...(init.body !== undefined && { 'content-type': 'application/json' }), ...init.headers },
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${(body as { error?: string } | undefined)?.error ?? res.statusText}`);
  return body as T;
}
