import type { ErrorCode } from '../core/errors.js';

/** GatewayError code -> HTTP status, as the REST endpoints answer it; the notification channel reuses it. */
export const httpStatusByCode = {
  parse_error: 400,
  bad_request: 400,
  unknown_command: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  system_not_found: 404,
  module_not_found: 404,
  conflict: 409,
  rate_limited: 429,
  request_failed: 500,
  internal: 500,
  unavailable: 503,
  timeout: 504,
} as const satisfies Record<ErrorCode, number>;
