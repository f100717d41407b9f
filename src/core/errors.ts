/**
 * The one error class of the gateway. Each protocol maps `code` to its own wire shape through a table
 * checked by the compiler (see protocol/notify-errors.ts and protocol/control-errors.ts). Anything that is
 * not a GatewayError is an unexpected failure: logged with its stack, never sent.
 */
export const errorCodes = [
  'parse_error',
  'bad_request',
  'unauthorized',
  'forbidden',
  'conflict',
  'not_found',
  'rate_limited',
  'unavailable',
  'timeout',
  'unknown_command',
  'system_not_found',
  'module_not_found',
  'request_failed',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isGatewayError = (err: unknown): err is GatewayError => err instanceof GatewayError;

/** The message to show a client: a GatewayError's own text, anything else a generic one. */
export function publicMessage(err: unknown, fallback = 'Internal error'): string {
  return isGatewayError(err) ? err.message : fallback;
}
