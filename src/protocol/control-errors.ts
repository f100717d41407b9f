import { type ErrorCode, isGatewayError } from '../core/errors.js';

/**
 * GatewayError code -> the control channel's `error_code` (spec: control-protocol.md, "Errors"):
 * 0 parse error, 1 bad request, 2 access denied, 3 request failed, 4 unknown command, 5 system not found,
 * 6 module not found, 7 unexpected failure. Too many requests is 1 (spec "Limits").
 */
export const controlErrorCodeByCode = {
  parse_error: 0,
  bad_request: 1,
  conflict: 1,
  unauthorized: 2,
  forbidden: 2,
  request_failed: 3,
  unknown_command: 4,
  system_not_found: 5,
  module_not_found: 6,
  not_found: 6,
  rate_limited: 1,
  unavailable: 7,
  timeout: 7,
  internal: 7,
} as const satisfies Record<ErrorCode, number>;

export const unexpectedFailureMessage = 'unexpected failure';

/**
 * The error to send for a failure: a GatewayError's code and own message; anything else is 7 with a generic
 * message (the caller logs it with its stack; the client never sees it).
 */
export function toControlError(err: unknown): { errorCode: number; message: string; expected: boolean } {
  if (isGatewayError(err)) return { errorCode: controlErrorCodeByCode[err.code], message: err.message, expected: true };
  return { errorCode: 7, message: unexpectedFailureMessage, expected: false };
}
