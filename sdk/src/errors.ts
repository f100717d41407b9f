/**
 * Named errors of the SDK. Every error the SDK rejects with or reports is a SwitchboardError, so callers
 * can tell the SDK's failures from their own with one `instanceof`.
 */
export class SwitchboardError extends Error {
  override readonly name: string = 'SwitchboardError';
}

/** The client was closed (by `close()` or a fatal refusal) before the operation could finish. */
export class ClientClosedError extends SwitchboardError {
  override readonly name: string = 'ClientClosedError';
}

/**
 * The socket dropped while a request was in flight (the request may or may not have taken effect), or the
 * client gave up reconnecting. `code` and `reason` are those of the WebSocket close, when there was one.
 */
export class ConnectionLostError extends SwitchboardError {
  override readonly name: string = 'ConnectionLostError';
  constructor(
    message: string,
    readonly code?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/**
 * The request was not sent: the client is not connected (it is reconnecting and the call asked to fail fast,
 * or `disconnect()` was called while it waited). Unlike ConnectionLostError, it certainly did not take effect.
 */
export class NotConnectedError extends SwitchboardError {
  override readonly name: string = 'NotConnectedError';
}

/** The call's AbortSignal fired; `cause` is the signal's reason. A request not yet sent is never sent. */
export class AbortError extends SwitchboardError {
  override readonly name: string = 'AbortError';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** A value did not pass the `decode` function given to `exec`, `watch` or `values`; `cause` is what it threw. */
export class UnexpectedValueError extends SwitchboardError {
  override readonly name: string = 'UnexpectedValueError';
  constructor(
    message: string,
    readonly value: unknown,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** No answer within the time allowed. */
export class TimeoutError extends SwitchboardError {
  override readonly name: string = 'TimeoutError';
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

/**
 * The gateway refused the credentials (control channel: 401 bad credential, 403 missing scope). Not retried.
 * Seen from the upgrade's HTTP status where the WebSocket implementation tells it (`ws`), else from an HTTP
 * probe with the same credentials after a socket that never opened (browsers hide the status).
 */
export class AuthenticationError extends SwitchboardError {
  override readonly name: string = 'AuthenticationError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The notification channel answered a join/leave with an error status (400, 401, 403, 409, 429, 503). */
export class NotifyRequestError extends SwitchboardError {
  override readonly name: string = 'NotifyRequestError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A command ended with `command_status` 3; `reason` is the backend's `body`. */
export class CommandFailedError extends SwitchboardError {
  override readonly name: string = 'CommandFailedError';
  constructor(
    readonly commandId: string,
    readonly reason: string,
  ) {
    super(`command ${commandId} failed: ${reason}`);
  }
}

/** Control protocol `error_code` values (spec: control-protocol.md, "Errors"). */
export const controlErrorNames = {
  0: 'parse error',
  1: 'bad request',
  2: 'access denied',
  3: 'request failed',
  4: 'unknown command',
  5: 'system not found',
  6: 'module not found',
  7: 'unexpected failure',
} as const;
export type ControlErrorCode = keyof typeof controlErrorNames;

/** An `error` frame of the control channel. Each `error_code` has its own subclass below. */
export class ControlError extends SwitchboardError {
  override readonly name: string = 'ControlError';
  constructor(
    message: string,
    readonly errorCode: ControlErrorCode,
    /** The HTTP-like `code` of the frame (500 unless the server says otherwise). */
    readonly code: number,
    readonly requestId: number,
  ) {
    super(message);
  }
}
export class ControlParseError extends ControlError {
  override readonly name: string = 'ControlParseError';
}
export class BadRequestError extends ControlError {
  override readonly name: string = 'BadRequestError';
}
export class AccessDeniedError extends ControlError {
  override readonly name: string = 'AccessDeniedError';
}
export class RequestFailedError extends ControlError {
  override readonly name: string = 'RequestFailedError';
}
export class UnknownCommandError extends ControlError {
  override readonly name: string = 'UnknownCommandError';
}
export class SystemNotFoundError extends ControlError {
  override readonly name: string = 'SystemNotFoundError';
}
export class ModuleNotFoundError extends ControlError {
  override readonly name: string = 'ModuleNotFoundError';
}
export class UnexpectedFailureError extends ControlError {
  override readonly name: string = 'UnexpectedFailureError';
}

const controlErrorClasses = {
  0: ControlParseError,
  1: BadRequestError,
  2: AccessDeniedError,
  3: RequestFailedError,
  4: UnknownCommandError,
  5: SystemNotFoundError,
  6: ModuleNotFoundError,
  7: UnexpectedFailureError,
} as const satisfies Record<ControlErrorCode, typeof ControlError>;

/** The typed error for an error frame; an `error_code` outside 0-7 becomes UnexpectedFailureError. */
export function controlErrorFromFrame(frame: { id: number; msg?: string; error_code?: number; code?: number }): ControlError {
  const errorCode = (frame.error_code !== undefined && frame.error_code in controlErrorClasses ? frame.error_code : 7) as ControlErrorCode;
  const Class = controlErrorClasses[errorCode];
  return new Class(frame.msg ?? controlErrorNames[errorCode], errorCode, frame.code ?? 500, frame.id);
}
