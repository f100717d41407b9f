/**
 * Wire shapes of the control channel (spec: control-protocol.md, "Requests" and "Responses") and their pure
 * parse/format. No I/O: shared by the gateway, the SDK and the tests.
 */

export type ControlCommand = 'bind' | 'unbind' | 'exec' | 'debug' | 'ignore';
export const controlCommands: readonly ControlCommand[] = ['bind', 'unbind', 'exec', 'debug', 'ignore'];

export interface ControlRequest {
  id: number;
  cmd: ControlCommand;
  sys: string;
  mod: string;
  /** 1-based; absent or null in the frame means 1. */
  index: number;
  /** Absent only for debug/ignore, where PlaceOS UIs send `debug`/`ignore` or nothing. */
  name: string;
  /** exec only; absent means no arguments. */
  args: unknown[];
}

/** What a bind/exec/debug reply echoes back. */
export interface ControlMeta {
  sys: string;
  mod: string;
  index: number;
  name: string;
}

/** Why a frame could not become a request: the error to send (`id` 0 when none could be read). */
export interface ControlParseFailure {
  id: number;
  errorCode: 0 | 1 | 4;
  message: string;
}

export type ControlParseResult = { ok: true; request: ControlRequest } | ({ ok: false } & ControlParseFailure);

export type ControlFrameType = 'success' | 'notify' | 'error' | 'debug';

/**
 * One outbound frame. `value` is JSON text spliced in as it is (the store holds JSON text; re-parsing it
 * would cost time and could change it). Absent fields are omitted.
 */
export interface ControlFrame {
  id: number;
  type: ControlFrameType;
  msg?: string;
  /** Raw JSON text. */
  value?: string;
  error_code?: number;
  meta?: ControlMeta;
  mod?: string;
  level?: string;
  code?: number;
}

/** Literal heartbeat frames (spec: "Heartbeat"). */
export const pingFrame = 'ping';
export const pongFrame = 'pong';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Parses one client text frame. The order of checks decides which error a client sees for a frame with
 * several faults: JSON (0), then `id`, then `cmd` (4 for an unknown command), then the other fields (1).
 */
/**
 * Longest system, module or variable/method name accepted: a binding holds its names for the socket's life,
 * so megabyte names would let one socket hold gigabytes (spec "Limits").
 */
export const maxNameLength = 256;

export function parseControlRequest(text: string): ControlParseResult {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { ok: false, id: 0, errorCode: 0, message: 'invalid JSON' };
  }
  if (!isObject(frame)) return { ok: false, id: 0, errorCode: 1, message: 'request must be a JSON object' };
  const fail = (id: number, errorCode: 0 | 1 | 4, message: string): ControlParseResult => ({ ok: false, id, errorCode, message });

  if (!Number.isSafeInteger(frame.id)) return fail(0, 1, 'field "id" must be an integer');
  const id = frame.id as number;
  if (typeof frame.cmd !== 'string' || frame.cmd.length === 0) return fail(id, 1, 'field "cmd" must be a string');
  const cmd = frame.cmd.toLowerCase() as ControlCommand;
  if (!controlCommands.includes(cmd)) return fail(id, 4, `unknown command: ${truncate(frame.cmd)}`);

  for (const field of ['sys', 'mod'] as const) {
    if (typeof frame[field] !== 'string' || frame[field] === '') return fail(id, 1, `field "${field}" must be a non-empty string`);
    if ((frame[field] as string).length > maxNameLength) return fail(id, 1, `field "${field}" is longer than ${maxNameLength} characters`);
  }
  const nameOptional = cmd === 'debug' || cmd === 'ignore';
  if (frame.name === undefined || frame.name === null) {
    if (!nameOptional) return fail(id, 1, 'field "name" must be a non-empty string');
  } else if (typeof frame.name !== 'string' || frame.name === '') {
    return fail(id, 1, 'field "name" must be a non-empty string');
  } else if (frame.name.length > maxNameLength) {
    return fail(id, 1, `field "name" is longer than ${maxNameLength} characters`);
  }
  let index = 1;
  if (frame.index !== undefined && frame.index !== null) {
    if (!Number.isSafeInteger(frame.index) || (frame.index as number) < 1) return fail(id, 1, 'field "index" must be an integer of at least 1');
    index = frame.index as number;
  }
  let args: unknown[] = [];
  if (cmd === 'exec' && frame.args !== undefined && frame.args !== null) {
    if (!Array.isArray(frame.args)) return fail(id, 1, 'field "args" must be an array');
    args = frame.args;
  }
  return {
    ok: true,
    request: {
      id,
      cmd,
      sys: frame.sys as string,
      mod: frame.mod as string,
      index,
      name: typeof frame.name === 'string' ? frame.name : cmd,
      args,
    },
  };
}

export const metaOf = (request: Pick<ControlRequest, 'sys' | 'mod' | 'index' | 'name'>): ControlMeta => ({
  sys: request.sys,
  mod: request.mod,
  index: request.index,
  name: request.name,
});

/** Serialises a frame with the spec's key order: `id, type, msg, value, error_code, meta, mod, level, code`. */
export function formatControlFrame(frame: ControlFrame): string {
  let out = `{"id":${String(frame.id)},"type":${JSON.stringify(frame.type)}`;
  if (frame.msg !== undefined) out += `,"msg":${JSON.stringify(frame.msg)}`;
  if (frame.value !== undefined) out += `,"value":${frame.value}`;
  if (frame.error_code !== undefined) out += `,"error_code":${String(frame.error_code)}`;
  if (frame.meta !== undefined) {
    const m = frame.meta;
    out += `,"meta":{"sys":${JSON.stringify(m.sys)},"mod":${JSON.stringify(m.mod)},"index":${String(m.index)},"name":${JSON.stringify(m.name)}}`;
  }
  if (frame.mod !== undefined) out += `,"mod":${JSON.stringify(frame.mod)}`;
  if (frame.level !== undefined) out += `,"level":${JSON.stringify(frame.level)}`;
  if (frame.code !== undefined) out += `,"code":${String(frame.code)}`;
  return `${out}}`;
}

export const successFrame = (id: number, meta?: ControlMeta): string => formatControlFrame({ id, type: 'success', ...(meta && { meta }) });

export const execSuccessFrame = (id: number, valueJson: string, meta: ControlMeta, code: number): string =>
  formatControlFrame({ id, type: 'success', value: valueJson, meta, code });

/**
 * A notify frame. One status change goes to every socket bound to it in one loop, and only the id differs
 * between their frames when they bound the same variable: the rest is built once per change and reused
 * (formatControlFrame per socket was 6 % of the gateway's CPU at 100,000 notifies a second).
 */
export function notifyFrame(id: number, valueJson: string, meta: ControlMeta): string {
  let tail = lastNotifyTail;
  if (!tail || tail.valueJson !== valueJson || !sameMeta(tail.meta, meta)) {
    const frame = formatControlFrame({ id: 0, type: 'notify', value: valueJson, meta });
    tail = lastNotifyTail = { valueJson, meta: { ...meta }, text: frame.slice(frame.indexOf(',')) };
  }
  return `{"id":${String(id)}${tail.text}`;
}

let lastNotifyTail: { valueJson: string; meta: ControlMeta; text: string } | undefined;

const sameMeta = (a: ControlMeta, b: ControlMeta): boolean =>
  a.index === b.index && a.name === b.name && a.mod === b.mod && a.sys === b.sys;

export const errorFrame = (id: number, errorCode: number, msg: string): string =>
  formatControlFrame({ id, type: 'error', msg, error_code: errorCode, code: 500 });

export const debugFrame = (id: number, msg: string, meta: ControlMeta, moduleId: string, level: string): string =>
  formatControlFrame({ id, type: 'debug', msg, meta, mod: moduleId, level });

function truncate(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A module's status variables as one JSON object, the stored JSON texts embedded as they are. */
export function statusObjectJson(state: Readonly<Record<string, string>>): string {
  return `{${Object.entries(state)
    .map(([name, json]) => `${JSON.stringify(name)}:${json}`)
    .join(',')}}`;
}
