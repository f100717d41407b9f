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
  /** The method's return value as JSON text, serialised once where the module runs (undefined: `null`). */
  json: string;
  /** HTTP-like code, 200 unless the driver sets another. */
  code: number;
}

/**
 * Runs driver modules wherever they are placed in the fleet; callers never learn where.
 * - `exec` rejects with GatewayError: 'bad_request' (`could not find function X`, bad arguments),
 *   'forbidden' (method above the caller's clearance), 'module_not_found' (not running),
 *   'request_failed' (the driver raised: `module raised: <message> (<ErrorName>)`), 'timeout' (no answer
 *   within the exec timeout), 'unavailable' (the node running it is gone or the module is moving). It runs
 *   the method at most once, never hangs past the timeout, and a driver failure never escapes.
 * - `functions` describes the methods of a running module; rejects 'module_not_found' when it runs nowhere.
 * - `debug` streams the module's log lines, from whichever node runs it, to `onLine` until the returned
 *   function is called; resolves once the stream is live.
 */
export interface DriverHost {
  exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult>;
  functions(module: ModuleId): Promise<Record<string, FunctionDescription>>;
  debug(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void>;
}
