import type { Principal } from './credentials.js';
import type { ModuleId } from './ids.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface DriverLogLine {
  module: ModuleId;
  level: LogLevel;
  message: string;
}

export interface FunctionDescription {
  /** Number of declared parameters. */
  arity: number;
  /** Parameter name -> JSON-Schema-like description, as PlaceOS's functions endpoint returns it. */
  params: Record<string, unknown>;
  order: string[];
  /** Lowest clearance allowed to call it. */
  clearance: 'user' | 'support' | 'admin';
}

export interface ExecResult {
  /** The method's return value (serialised as raw JSON; undefined becomes null). */
  value: unknown;
  /** HTTP-like code, 200 unless the driver sets another. */
  code: number;
}

/**
 * Runs driver modules: in-process first, remote workers later behind the same interface.
 * - `exec` rejects with GatewayError: 'bad_request' (`could not find function X`, bad arguments),
 *   'forbidden' (method above the caller's clearance), 'module_not_found' (module not running),
 *   'request_failed' (the driver raised: `module raised: <message> (<ErrorName>)`), 'timeout' (no answer
 *   within the exec timeout). It never hangs past the timeout and a driver failure never escapes.
 * - `debug` streams the module's log lines to `onLine` until the returned function is called.
 */
export interface DriverHost {
  exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult>;
  functions(module: ModuleId): Record<string, FunctionDescription> | undefined;
  debug(module: ModuleId, onLine: (line: DriverLogLine) => void): () => void;
}
