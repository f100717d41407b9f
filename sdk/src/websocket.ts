/**
 * The part of the WHATWG WebSocket the SDK uses. Browsers' WebSocket and Node's `ws` both satisfy it, and
 * tests inject a fake with the same shape.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const OPEN = 1;

/**
 * The WebSocket implementation to use: the injected one, else the platform's (browsers, Deno, Node 22+),
 * else `ws`, imported lazily under a computed name so browser bundlers never pull it in.
 */
export async function resolveWebSocket(injected?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (injected) return injected;
  const platform = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof platform === 'function') return platform as WebSocketConstructor;
  const name = 'ws';
  const mod = (await import(/* @vite-ignore */ name)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
  const found = mod.WebSocket ?? mod.default;
  if (!found) throw new Error('no WebSocket implementation: install `ws` or pass the WebSocket option');
  return found;
}

/** Text of a message event: browsers give strings; `ws` gives strings for text frames (Buffers only for binary). */
export function messageText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  return undefined;
}

/** The HTTP status of a refused upgrade when the implementation tells it (`ws`: "Unexpected server response: 401"). */
export function refusedUpgradeStatus(event: unknown): number | undefined {
  const text = String((event as { message?: unknown; error?: { message?: unknown } })?.message ?? (event as { error?: { message?: unknown } })?.error?.message ?? '');
  const match = /Unexpected server response: (\d{3})/.exec(text);
  return match ? Number(match[1]) : undefined;
}
