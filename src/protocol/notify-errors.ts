import type { ErrorCode } from '../core/errors.js';
import { httpStatusByCode } from './http-status.js';

/**
 * GatewayError code -> the notification channel's HTTP-like `status` (spec: notify-protocol.md, "Errors"):
 * the REST statuses, except that a timeout is a 503 (the spec lists no 504; a client retries either way).
 */
export const notifyStatusByCode = { ...httpStatusByCode, timeout: 503 } as const satisfies Record<ErrorCode, number>;
