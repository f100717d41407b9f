import type { Principal } from '../../core/credentials.js';
import type { DriverLogLine, FunctionDescription } from '../../core/driver-host.js';
import type { ErrorCode } from '../../core/errors.js';
import type { ModuleRecord } from '../../core/system-directory.js';
import type { DeviceAddress } from '../../driver-api/driver-api.js';

/** Where a host finds a driver: a bundled driver by key, or an ES module file (absolute path). */
export interface DriverSource {
  key: string;
  file?: string;
}

/** Gateway → driver host (IPC, in order). */
export type ToHost =
  | { t: 'load'; module: ModuleRecord; driver: DriverSource; devices: Array<[string, DeviceAddress]>; settings?: Record<string, unknown> }
  | { t: 'unload'; module: string }
  /** `caller`: what the method's clearance check needs (a driver never sees who called). */
  | { t: 'exec'; id: number; module: string; method: string; args: unknown[]; caller: Pick<Principal, 'id' | 'clearance'> }
  | { t: 'settings'; id: number; module: string; settings: unknown }
  | { t: 'describe'; id: number; driver: DriverSource; modules: Array<{ id: string; settings: unknown }> }
  /** `n` more status writes of this host are stored (flow control: see driver-host-main.ts). */
  | { t: 'ack'; n: number };

export type HostError = { code: ErrorCode; message: string };

/** Driver host → gateway. Checked by the gateway before use: driver code runs in the host and could send anything. */
export type FromHost =
  | { t: 'hb' }
  | { t: 'loaded'; module: string; running: boolean; reason?: string; functions?: Record<string, FunctionDescription> }
  | { t: 'unloaded'; module: string }
  | { t: 'status'; module: string; name: string; json: string }
  | { t: 'delete'; module: string; name: string }
  | { t: 'log'; line: DriverLogLine }
  | { t: 'reply'; id: number; ok: true; json?: string; code?: number; value?: unknown }
  | { t: 'reply'; id: number; ok: false; error: HostError };

const isString = (v: unknown): v is string => typeof v === 'string';
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The message if it is well formed, else undefined (the gateway logs and drops it). */
export function parseFromHost(message: unknown): FromHost | undefined {
  if (!isRecord(message) || !isString(message.t)) return undefined;
  const m = message;
  switch (m.t) {
    case 'hb':
      return { t: 'hb' };
    case 'loaded':
      if (!isString(m.module) || typeof m.running !== 'boolean') return undefined;
      return {
        t: 'loaded',
        module: m.module,
        running: m.running,
        ...(isString(m.reason) && { reason: m.reason }),
        ...(isRecord(m.functions) && { functions: m.functions as Record<string, FunctionDescription> }),
      };
    case 'unloaded':
      return isString(m.module) ? { t: 'unloaded', module: m.module } : undefined;
    case 'status':
      return isString(m.module) && isString(m.name) && isString(m.json) ? { t: 'status', module: m.module, name: m.name, json: m.json } : undefined;
    case 'delete':
      return isString(m.module) && isString(m.name) ? { t: 'delete', module: m.module, name: m.name } : undefined;
    case 'log': {
      const line = m.line;
      if (!isRecord(line) || !isString(line.module) || !isString(line.message) || !['debug', 'info', 'warn', 'error'].includes(line.level as string)) return undefined;
      return { t: 'log', line: { module: line.module, level: line.level, message: line.message } as DriverLogLine };
    }
    case 'reply':
      if (typeof m.id !== 'number') return undefined;
      if (m.ok === true) {
        return {
          t: 'reply',
          id: m.id,
          ok: true,
          ...(isString(m.json) && { json: m.json }),
          ...(typeof m.code === 'number' && { code: m.code }),
          ...('value' in m && { value: m.value }),
        };
      }
      if (m.ok === false && isRecord(m.error) && isString(m.error.code) && isString(m.error.message)) {
        return { t: 'reply', id: m.id, ok: false, error: { code: m.error.code as ErrorCode, message: m.error.message } };
      }
      return undefined;
    default:
      return undefined;
  }
}
