import type { ControlCommand, ControlMeta } from '../../src/protocol/control.js';
import { Emitter } from './emitter.js';
import {
  ClientClosedError,
  ConnectionLostError,
  ControlError,
  controlErrorFromFrame,
  SwitchboardError,
  TimeoutError,
} from './errors.js';
import { type CloseInfo, type ConnectionOptions, ManagedSocket } from './managed-socket.js';
import type { StatusEvent, StatusStream } from './status.js';

export type { ControlMeta };

/** A module inside a system: `mod` is its name (`Display`), `index` its 1-based position (default 1). */
export interface ModuleTarget {
  sys: string;
  mod: string;
  index?: number;
}

/** A status variable of a module. */
export interface VariableTarget extends ModuleTarget {
  name: string;
}

export interface BindResult {
  meta: ControlMeta;
}

export interface ExecResult<T = unknown> {
  /** The method's return value (null when it returns nothing). */
  value: T;
  /** HTTP-like code, 200 unless the driver set another. */
  code: number;
  meta: ControlMeta;
}

export interface DebugLine {
  message: string;
  level: string;
  /** The module id that logged the line. */
  moduleId: string;
  meta?: ControlMeta;
}

/** An inbound frame of the control channel (spec: control-protocol.md, "Responses"). */
export interface ControlFrameIn {
  id: number;
  type: 'success' | 'notify' | 'error' | 'debug';
  msg?: string;
  value?: unknown;
  error_code?: number;
  meta?: ControlMeta;
  mod?: string;
  level?: string;
  code?: number;
}

export interface ControlClientOptions extends ConnectionOptions {
  /**
   * The gateway, e.g. `ws://127.0.0.1:8080` (`http(s)://` works too); the control path
   * `/api/engine/v2/systems/control` is appended unless the URL already ends with it.
   */
  url: string;
  /** API key, sent as the `api-key` query parameter (browsers cannot set WebSocket headers). */
  apiKey?: string;
  /** A JWT (or a function giving the current one, read at every connection), sent as `bearer_token`. */
  token?: string | (() => string);
  /** Reply timeout of each request. Default 30 s (the gateway times execs out itself, with error 7). */
  requestTimeoutMs?: number;
}

export interface ControlClientEvents {
  [event: string]: (...args: any[]) => void;
  /** Every value change of every bound variable. */
  notify: (value: unknown, meta: ControlMeta) => void;
  /** A background failure (a re-bind or re-debug after reconnection that the gateway refused). */
  error: (error: SwitchboardError) => void;
}

interface BindingEntry {
  target: Required<VariableTarget>;
  listeners: Set<(value: unknown, meta: ControlMeta) => void>;
  /** Bound by `bind()` (stays until `unbind()`), not only by watchers. */
  explicit: boolean;
  /** The bind sent on socket `generation`: later binds and watchers of the variable on that socket reuse it. */
  bound?: { generation: number; result: Promise<BindResult> };
  last?: { json: string; value: unknown; meta: ControlMeta };
}

interface DebugEntry {
  target: Required<ModuleTarget>;
  listeners: Set<(line: DebugLine) => void>;
}

interface PendingRequest {
  resolve: (frame: ControlFrameIn) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const controlPath = '/api/engine/v2/systems/control';

/**
 * Client of the control channel (spec: control-protocol.md): typed bind/unbind/exec/debug/ignore, error
 * frames as ControlError subclasses (one per `error_code`), heartbeat, and bindings and debug streams that
 * are re-established after every reconnection.
 *
 * ```ts
 * const control = new ControlClient({ url: 'ws://127.0.0.1:8080', apiKey: 'demo-admin-key' });
 * const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
 * for await (const value of control.values(power)) console.log('power is', value);
 * ```
 */
export class ControlClient extends Emitter<ControlClientEvents> {
  private readonly socket: ManagedSocket;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly bindings = new Map<string, BindingEntry>();
  private readonly debugs = new Map<string, DebugEntry>();
  /** Request id -> binding / debug stream, for the socket in use (cleared when it drops). */
  private readonly bindingsById = new Map<number, BindingEntry>();
  private readonly debugsById = new Map<number, DebugEntry>();
  private nextId = 0;

  constructor(private readonly options: ControlClientOptions) {
    super();
    this.socket = new ManagedSocket(
      {
        url: () => this.url(),
        onOpen: () => this.reopened(),
        onText: (text) => this.received(text),
        onDrop: (error) => this.dropped(error),
      },
      options,
    );
  }

  get status(): StatusStream {
    return this.socket.status;
  }

  onStatus(listener: (event: StatusEvent) => void): () => void {
    return this.socket.status.on('status', listener);
  }

  /** Requests awaiting a reply, bindings and debug streams held (for checking that nothing leaks). */
  get counts(): { pending: number; bindings: number; debugs: number; requestIds: number } {
    return { pending: this.pending.size, bindings: this.bindings.size, debugs: this.debugs.size, requestIds: this.bindingsById.size + this.debugsById.size };
  }

  connect(): Promise<void> {
    return this.socket.start();
  }

  /** Binds a status variable; its values arrive as `notify` events and to watchers. Kept across reconnections. */
  async bind(target: VariableTarget): Promise<BindResult> {
    const entry = this.bindingEntry(target);
    entry.explicit = true;
    return this.bindOnce(entry);
  }

  /** Unbinds a variable; its watchers stop receiving values. */
  async unbind(target: VariableTarget): Promise<void> {
    const key = bindingKey(normalise(target));
    this.bindings.delete(key);
    for (const [id, entry] of this.bindingsById) if (bindingKey(entry.target) === key) this.bindingsById.delete(id);
    await this.request('unbind', normalise(target));
  }

  /**
   * Calls a module method. Resolves with its return value; rejects with a ControlError subclass
   * (BadRequestError for an unknown method or bad arguments, AccessDeniedError, RequestFailedError when the
   * driver raised, ...), or ConnectionLostError when the socket dropped before the answer (the call may
   * or may not have run: it is not repeated).
   */
  async exec<T = unknown>(target: ModuleTarget, method: string, args: unknown[] = []): Promise<ExecResult<T>> {
    const frame = await this.request('exec', { ...normalise({ ...target, name: method }), args });
    return { value: (frame.value ?? null) as T, code: frame.code ?? 200, meta: frame.meta ?? metaOf(normalise({ ...target, name: method })) };
  }

  /**
   * Calls `listener` with the variable's current value (when it has one) and every change, binding it if
   * needed. The returned function stops watching (and unbinds once nobody watches a variable that was not
   * bound explicitly).
   */
  async watch(target: VariableTarget, listener: (value: unknown, meta: ControlMeta) => void): Promise<() => Promise<void>> {
    const entry = this.bindingEntry(target);
    entry.listeners.add(listener);
    if (entry.last) listener(entry.last.value, entry.last.meta);
    try {
      await this.bindOnce(entry);
    } catch (err) {
      await this.release(entry, listener);
      throw err;
    }
    return () => this.release(entry, listener);
  }

  /** The variable's values as an async iterator: the current value first (if set), then each change. */
  values(target: VariableTarget): AsyncIterableIterator<unknown> {
    const queue: unknown[] = [];
    let wake: (() => void) | undefined;
    let failure: Error | undefined;
    let done = false;
    let stop: (() => Promise<void>) | undefined;
    const started = this.watch(target, (value) => {
      queue.push(value);
      wake?.();
    }).then(
      (s) => {
        stop = s;
        if (done) void s();
      },
      (err: Error) => {
        failure = err;
        wake?.();
      },
    );
    const closedWatch = this.socket.closed().then(() => {
      done = true;
      wake?.();
    });
    void closedWatch;
    const iterator: AsyncIterableIterator<unknown> = {
      next: async () => {
        while (queue.length === 0 && !failure && !done) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (queue.length > 0) return { done: false, value: queue.shift() };
        if (failure) {
          const err = failure;
          done = true;
          throw err;
        }
        return { done: true, value: undefined };
      },
      return: async () => {
        done = true;
        wake?.();
        await started;
        await stop?.();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** The last value received for a variable, if any. */
  value(target: VariableTarget): unknown {
    return this.bindings.get(bindingKey(normalise(target)))?.last?.value;
  }

  /**
   * Streams a module's log lines to `listener` (`mod` may be the module id or its name). Kept across
   * reconnections. The returned function stops it (sends `ignore` once no listener is left).
   */
  async debug(target: ModuleTarget, listener: (line: DebugLine) => void): Promise<() => Promise<void>> {
    const t = normaliseModule(target);
    const key = moduleKey(t);
    let entry = this.debugs.get(key);
    const fresh = !entry;
    if (!entry) this.debugs.set(key, (entry = { target: t, listeners: new Set() }));
    entry.listeners.add(listener);
    const held = entry;
    try {
      if (fresh) await this.sendDebug(held);
    } catch (err) {
      held.listeners.delete(listener);
      if (held.listeners.size === 0) this.debugs.delete(key);
      throw err;
    }
    return async () => {
      held.listeners.delete(listener);
      if (held.listeners.size === 0 && this.debugs.get(key) === held) await this.ignore(t);
    };
  }

  /** Stops a module's debug stream for every listener. */
  async ignore(target: ModuleTarget): Promise<void> {
    const t = normaliseModule(target);
    const key = moduleKey(t);
    this.debugs.delete(key);
    for (const [id, entry] of this.debugsById) if (moduleKey(entry.target) === key) this.debugsById.delete(id);
    if (!this.socket.isOpen) return;
    await this.request('ignore', { ...t, name: 'ignore' });
  }

  close(): Promise<CloseInfo> {
    return this.socket.close();
  }

  /** Resolves when the client has closed for good; never rejects. */
  closed(): Promise<CloseInfo> {
    return this.socket.closed();
  }

  // --- requests ------------------------------------------------------------------------------------------

  private url(): string {
    const url = new URL(this.options.url.replace(/^http/, 'ws'));
    if (!url.pathname.endsWith(controlPath)) url.pathname = url.pathname.replace(/\/$/, '') + controlPath;
    if (this.options.apiKey !== undefined) url.searchParams.set('api-key', this.options.apiKey);
    const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    if (token !== undefined) url.searchParams.set('bearer_token', token);
    return url.toString();
  }

  private async request(
    cmd: ControlCommand,
    fields: { sys: string; mod: string; index: number; name: string; args?: unknown[] },
    onSent?: (id: number) => void,
  ): Promise<ControlFrameIn> {
    void this.connect().catch(() => {});
    await this.socket.whenOpen();
    const id = ++this.nextId;
    const timeoutMs = this.options.requestTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`no reply to ${cmd} ${fields.sys}/${fields.mod}_${fields.index}.${fields.name} within ${timeoutMs} ms`, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      onSent?.(id);
      try {
        this.socket.send(JSON.stringify({ id, cmd, ...fields }));
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err as Error);
      }
    });
  }

  private bindingEntry(target: VariableTarget): BindingEntry {
    const t = normalise(target);
    const key = bindingKey(t);
    let entry = this.bindings.get(key);
    if (!entry) this.bindings.set(key, (entry = { target: t, listeners: new Set(), explicit: false }));
    return entry;
  }

  /**
   * Binds once per socket: a variable already bound (or being bound) on the open socket is not bound again,
   * so watchers coming and going leave no request ids behind.
   */
  private bindOnce(entry: BindingEntry): Promise<BindResult> {
    const generation = this.socket.generation;
    if (this.socket.isOpen && entry.bound?.generation === generation) return entry.bound.result;
    const result = this.sendBind(entry);
    if (this.socket.isOpen) entry.bound = { generation, result };
    result.catch(() => {
      if (entry.bound?.result === result) entry.bound = undefined;
    });
    return result;
  }

  /** Sends a bind; a socket lost before the reply is retried on the next one (bind is idempotent). */
  private async sendBind(entry: BindingEntry): Promise<BindResult> {
    for (;;) {
      try {
        const frame = await this.request('bind', entry.target, (id) => this.bindingsById.set(id, entry));
        return { meta: frame.meta ?? metaOf(entry.target) };
      } catch (err) {
        if (err instanceof ConnectionLostError && !this.socket.isStopped && this.bindings.get(bindingKey(entry.target)) === entry) continue;
        if (err instanceof ControlError) this.forgetBinding(entry);
        throw err;
      }
    }
  }

  private async sendDebug(entry: DebugEntry): Promise<void> {
    for (;;) {
      try {
        await this.request('debug', { ...entry.target, name: 'debug' }, (id) => this.debugsById.set(id, entry));
        return;
      } catch (err) {
        if (err instanceof ConnectionLostError && !this.socket.isStopped && this.debugs.get(moduleKey(entry.target)) === entry) continue;
        throw err;
      }
    }
  }

  private async release(entry: BindingEntry, listener: (value: unknown, meta: ControlMeta) => void): Promise<void> {
    entry.listeners.delete(listener);
    if (entry.listeners.size > 0 || entry.explicit || this.bindings.get(bindingKey(entry.target)) !== entry) return;
    this.forgetBinding(entry);
    if (this.socket.isOpen) await this.request('unbind', entry.target).catch(() => {});
  }

  private forgetBinding(entry: BindingEntry): void {
    const key = bindingKey(entry.target);
    if (this.bindings.get(key) === entry) this.bindings.delete(key);
    for (const [id, e] of this.bindingsById) if (e === entry) this.bindingsById.delete(id);
  }

  private reopened(): void {
    for (const entry of this.bindings.values()) {
      this.bindOnce(entry).catch((err: unknown) => this.background(err, `re-bind of ${describe(entry.target)}`));
    }
    for (const entry of this.debugs.values()) {
      this.sendDebug(entry).catch((err: unknown) => this.background(err, `re-debug of ${entry.target.sys}/${entry.target.mod}`));
    }
  }

  private background(err: unknown, context: string): void {
    if (err instanceof ClientClosedError) return;
    this.emit('error', err instanceof SwitchboardError ? err : new SwitchboardError(`${context} failed: ${String(err)}`));
  }

  private dropped(error: SwitchboardError): void {
    this.bindingsById.clear();
    this.debugsById.clear();
    const reason = error instanceof ClientClosedError ? error : new ConnectionLostError(error.message);
    for (const [id, pending] of [...this.pending]) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(reason);
    }
  }

  // --- inbound -------------------------------------------------------------------------------------------

  private received(text: string): void {
    let frame: ControlFrameIn;
    try {
      frame = JSON.parse(text) as ControlFrameIn;
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.id !== 'number') return;
    if (frame.type === 'notify') return this.notified(frame);
    if (frame.type === 'debug') return this.debugLine(frame);
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    this.pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.type === 'error') pending.reject(controlErrorFromFrame(frame));
    else pending.resolve(frame);
  }

  private notified(frame: ControlFrameIn): void {
    const entry = this.bindingsById.get(frame.id);
    if (!entry || this.bindings.get(bindingKey(entry.target)) !== entry) return;
    const meta = frame.meta ?? metaOf(entry.target);
    const value = frame.value ?? null;
    const json = JSON.stringify(value);
    // After a re-bind the gateway sends the current value again: pass it on only if it changed meanwhile.
    if (entry.last?.json === json) return;
    entry.last = { json, value, meta };
    this.emit('notify', value, meta);
    for (const listener of [...entry.listeners]) listener(value, meta);
  }

  private debugLine(frame: ControlFrameIn): void {
    const entry = this.debugsById.get(frame.id);
    if (!entry) return;
    const line: DebugLine = { message: frame.msg ?? '', level: frame.level ?? 'debug', moduleId: frame.mod ?? entry.target.mod, ...(frame.meta && { meta: frame.meta }) };
    for (const listener of [...entry.listeners]) listener(line);
  }
}

function normalise(target: VariableTarget): Required<VariableTarget> {
  return { sys: target.sys, mod: target.mod, index: target.index ?? 1, name: target.name };
}

function normaliseModule(target: ModuleTarget): Required<ModuleTarget> {
  return { sys: target.sys, mod: target.mod, index: target.index ?? 1 };
}

const metaOf = (t: Required<VariableTarget>): ControlMeta => ({ sys: t.sys, mod: t.mod, index: t.index, name: t.name });
const bindingKey = (t: Required<VariableTarget>) => JSON.stringify([t.sys, t.mod, t.index, t.name]);
const moduleKey = (t: Required<ModuleTarget>) => JSON.stringify([t.sys, t.mod, t.index]);
const describe = (t: Required<VariableTarget>) => `${t.sys}/${t.mod}_${t.index}.${t.name}`;
