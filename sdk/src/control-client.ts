import type { ControlCommand, ControlMeta } from '../../src/protocol/control.js';
import { callListener, Emitter } from './emitter.js';
import {
  AbortError,
  ClientClosedError,
  ConnectionLostError,
  ControlError,
  controlErrorFromFrame,
  NotConnectedError,
  SwitchboardError,
  UnexpectedValueError,
} from './errors.js';
import { type CloseInfo, type ConnectionOptions, ManagedSocket } from './managed-socket.js';
import type { StatusEvent, StatusStream } from './status.js';
import { type CallOptions, type OfflineOptions, type OfflinePolicy, type Settle, settling } from './timing.js';

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
  /**
   * Default timeout of every request, counted from the call (time spent waiting for a connection counts).
   * Default 30 s (the gateway times execs out itself after `control.execTimeoutMs`, with error 7).
   */
  requestTimeoutMs?: number;
  /**
   * What `exec` does while the client is reconnecting: `fail` (default) rejects at once with
   * NotConnectedError; `queue` sends it once connected again, if that happens within its timeout. Binds,
   * debug streams and the first connection always wait.
   */
  execWhenOffline?: OfflinePolicy;
  /**
   * Used to ask the gateway why a socket never opened when the WebSocket implementation does not say
   * (browsers): a GET of `/api/engine/v2/systems?limit=1` with the same credentials answers 401/403 exactly
   * as the upgrade does. Default: the global `fetch`. Across origins it needs the gateway (or its proxy) to
   * allow CORS; when the probe fails, the close counts as an ordinary drop and the client reconnects.
   */
  fetch?: (url: string, init: { method: 'GET' }) => Promise<{ status: number }>;
}

/** Options of `exec`: `whenOffline` overrides `execWhenOffline` for this call. */
export interface ExecOptions extends CallOptions, OfflineOptions {}

/** Options of `bind`, `watch` and `debug`: `whenOffline` defaults to `queue` (they are re-established after every reconnection anyway). */
export interface SubscribeOptions extends CallOptions, OfflineOptions {}

/** Checks (and converts) a value received from the gateway; throws when it is not what the caller expects. */
export type Decoder<T> = (value: unknown) => T;

export interface ControlClientEvents {
  /** Every value change of every bound variable. */
  notify: (value: unknown, meta: ControlMeta) => void;
  /** The gateway closed the socket with 4008: this client read too slowly. It reconnects and re-binds. */
  slowConsumer: (info: { code: number; reason: string }) => void;
  /** A background failure (a re-bind or re-debug the gateway refused, a value a `decode` rejected). */
  error: (error: SwitchboardError) => void;
}

type ValueListener = (value: unknown, meta: ControlMeta) => void;

interface BindingEntry {
  target: Required<VariableTarget>;
  listeners: Set<ValueListener>;
  /** Called when the binding is dropped (unbind, refused, client closed): iterators over it end. */
  enders: Set<() => void>;
  /** Bound by `bind()` (stays until `unbind()`), not only by watchers. */
  explicit: boolean;
  /** The bind answered on socket `generation`: later binds and watchers of the variable on that socket reuse it. */
  bound?: { generation: number; result: Promise<BindResult> };
  /** The bind being sent (across reconnections), until it is answered or fails. */
  inflight?: Promise<BindResult> | undefined;
  last?: { json: string; value: unknown; meta: ControlMeta };
  /** Aborted when the binding is dropped: a bind still waiting for a socket is then never sent. */
  abort: AbortController;
}

interface DebugEntry {
  target: Required<ModuleTarget>;
  listeners: Set<(line: DebugLine) => void>;
  /** The debug request being sent (across reconnections): the re-debug after a reconnection reuses it. */
  inflight?: Promise<void> | undefined;
  /** Aborted when the stream is dropped: a debug still waiting for a socket is then never sent. */
  abort: AbortController;
}

interface RequestOptions extends CallOptions {
  offline?: OfflinePolicy;
  onSent?: (id: number) => void;
}

const controlPath = '/api/engine/v2/systems/control';

/**
 * Client of the control channel (spec: control-protocol.md): typed bind/unbind/exec/debug/ignore, error
 * frames as ControlError subclasses (one per `error_code`), heartbeat, and bindings and debug streams that
 * are re-established after every reconnection. Every awaited call settles: each has a timeout counted from
 * the call and takes an AbortSignal, and all reject once the client closes or gives up.
 *
 * ```ts
 * const control = new ControlClient({ url: 'ws://127.0.0.1:8080', apiKey: 'demo-admin-key' });
 * const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
 * for await (const on of control.values(power, { decode: Boolean })) console.log('power is', on);
 * ```
 */
export class ControlClient extends Emitter<ControlClientEvents> {
  private readonly socket: ManagedSocket;
  private readonly pending = new Map<number, Settle<ControlFrameIn>>();
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
        onClosed: () => this.closedForGood(),
        onSlowConsumer: (info) => this.emit('slowConsumer', info),
        probeRefusal: () => this.probeCredentials(),
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

  /** Connects (every request connects by itself); resolves once open. Default timeout: `requestTimeoutMs`. */
  connect(options: CallOptions = {}): Promise<void> {
    return this.socket.connect(options, this.requestTimeoutMs);
  }

  /**
   * Closes the socket and stops reconnecting, keeping the client and its bindings and debug streams: the
   * next `connect()` or request connects again and re-establishes them.
   */
  disconnect(): void {
    this.socket.disconnect();
  }

  /** Binds a status variable; its values arrive as `notify` events and to watchers. Kept across reconnections. */
  bind(target: VariableTarget, options: SubscribeOptions = {}): Promise<BindResult> {
    const offline = this.failFast(options, `bind ${describe(normalise(target))}`);
    if (offline) return Promise.reject(offline);
    const entry = this.bindingEntry(target);
    entry.explicit = true;
    return this.within(this.bindOnce(entry), `bind ${describe(entry.target)}`, options).catch((err: unknown) => {
      // A bind the caller saw fail (timeout, abort, refusal) leaves no binding behind to come back later.
      if (entry.listeners.size === 0 && this.bindings.get(bindingKey(entry.target)) === entry) {
        entry.explicit = false;
        void this.release(entry, () => {});
      }
      throw err;
    });
  }

  /** Unbinds a variable: its watchers stop receiving values and its `values()` iterators end. */
  async unbind(target: VariableTarget, options: CallOptions = {}): Promise<void> {
    const t = normalise(target);
    const entry = this.bindings.get(bindingKey(t));
    if (entry) this.forgetBinding(entry);
    // Bindings live and die with a socket: with none open there is nothing to undo on the gateway.
    if (!this.socket.isOpen) return;
    await this.request('unbind', t, options);
  }

  /**
   * Calls a module method. Resolves with its return value; rejects with a ControlError subclass
   * (BadRequestError for an unknown method or bad arguments, AccessDeniedError, RequestFailedError when the
   * driver raised, ...), ConnectionLostError when the socket dropped before the answer (the call may or may
   * not have run: it is not repeated), NotConnectedError when called while reconnecting (see
   * `execWhenOffline`: by default an exec is never held back to run after an outage), TimeoutError, AbortError.
   * The value is `unknown` unless a `decode` function checks it (a throw rejects with UnexpectedValueError).
   */
  exec(target: ModuleTarget, method: string, args?: unknown[], options?: ExecOptions): Promise<ExecResult<unknown>>;
  exec<T>(target: ModuleTarget, method: string, args: unknown[], options: ExecOptions & { decode: Decoder<T> }): Promise<ExecResult<T>>;
  async exec<T>(target: ModuleTarget, method: string, args: unknown[] = [], options: ExecOptions & { decode?: Decoder<T> } = {}): Promise<ExecResult<T>> {
    const fields = normalise({ ...target, name: method });
    const frame = await this.request('exec', { ...fields, args }, { ...options, offline: options.whenOffline ?? this.options.execWhenOffline ?? 'fail' });
    const raw = frame.value ?? null;
    const value = options.decode ? decodeWith(options.decode, raw, `${describe(fields)}()`) : (raw as T);
    return { value, code: frame.code ?? 200, meta: frame.meta ?? metaOf(fields) };
  }

  /**
   * Calls `listener` with the variable's current value (when it has one) and every change, binding it if
   * needed. The returned function stops watching (and unbinds once nobody watches a variable that was not
   * bound explicitly). Values are `unknown` unless `decode` checks them; one it rejects is reported as an
   * `error` event (UnexpectedValueError) and not passed on. A listener that throws does not disturb others.
   */
  watch(target: VariableTarget, listener: (value: unknown, meta: ControlMeta) => void, options?: SubscribeOptions): Promise<() => Promise<void>>;
  watch<T>(target: VariableTarget, listener: (value: T, meta: ControlMeta) => void, options: SubscribeOptions & { decode: Decoder<T> }): Promise<() => Promise<void>>;
  async watch<T>(target: VariableTarget, listener: (value: T, meta: ControlMeta) => void, options: SubscribeOptions & { decode?: Decoder<T> } = {}): Promise<() => Promise<void>> {
    const offline = this.failFast(options, `watch ${describe(normalise(target))}`);
    if (offline) throw offline;
    const entry = this.bindingEntry(target);
    const decode = options.decode;
    const deliver: ValueListener = (value, meta) => {
      let decoded: T;
      try {
        decoded = decode ? decodeWith(decode, value, describe(entry.target)) : (value as T);
      } catch (err) {
        this.emit('error', err as SwitchboardError);
        return;
      }
      callListener(listener, decoded, meta);
    };
    entry.listeners.add(deliver);
    if (entry.last) deliver(entry.last.value, entry.last.meta);
    try {
      await this.within(this.bindOnce(entry), `watch ${describe(entry.target)}`, options);
    } catch (err) {
      // The caller is told now; the unbind (if one is due) needs no waiting for.
      void this.release(entry, deliver);
      throw err;
    }
    return () => this.release(entry, deliver);
  }

  /**
   * The variable's values as an async iterator: the current value first (if set), then each change. It ends
   * when the variable is unbound or the client closes, and throws the error that refused the bind, or
   * UnexpectedValueError when `decode` rejects a value.
   */
  values(target: VariableTarget, options?: CallOptions): AsyncIterableIterator<unknown>;
  values<T>(target: VariableTarget, options: CallOptions & { decode: Decoder<T> }): AsyncIterableIterator<T>;
  values<T>(target: VariableTarget, options: CallOptions & { decode?: Decoder<T> } = {}): AsyncIterableIterator<T> {
    const entry = this.bindingEntry(target);
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    let failure: unknown;
    let ended = false;
    let stopped = false;
    const wakeUp = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const deliver: ValueListener = (value) => {
      try {
        queue.push(options.decode ? decodeWith(options.decode, value, describe(entry.target)) : (value as T));
      } catch (err) {
        failure ??= err;
      }
      wakeUp();
    };
    const end = () => {
      ended = true;
      wakeUp();
    };
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      entry.enders.delete(end);
      await this.release(entry, deliver);
    };
    entry.listeners.add(deliver);
    entry.enders.add(end);
    if (entry.last) deliver(entry.last.value, entry.last.meta);
    this.within(this.bindOnce(entry), `bind ${describe(entry.target)}`, options).catch((err: unknown) => {
      failure ??= err;
      wakeUp();
    });
    const iterator: AsyncIterableIterator<T> = {
      next: async () => {
        while (queue.length === 0 && failure === undefined && !ended) await new Promise<void>((resolve) => (wake = resolve));
        if (queue.length > 0) return { done: false, value: queue.shift()! };
        ended = true;
        await stop();
        if (failure !== undefined) {
          const err = failure;
          failure = undefined;
          throw err;
        }
        return { done: true, value: undefined };
      },
      return: async () => {
        ended = true;
        queue.length = 0;
        wakeUp();
        await stop();
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
  async debug(target: ModuleTarget, listener: (line: DebugLine) => void, options: SubscribeOptions = {}): Promise<() => Promise<void>> {
    const t = normaliseModule(target);
    const offline = this.failFast(options, `debug ${t.sys}/${t.mod}_${t.index}`);
    if (offline) throw offline;
    const key = moduleKey(t);
    let entry = this.debugs.get(key);
    const fresh = !entry;
    if (!entry) this.debugs.set(key, (entry = { target: t, listeners: new Set(), abort: new AbortController() }));
    entry.listeners.add(listener);
    const held = entry;
    try {
      if (fresh) await this.within(this.sendDebug(held), `debug ${t.sys}/${t.mod}_${t.index}`, options);
    } catch (err) {
      held.listeners.delete(listener);
      if (held.listeners.size === 0 && this.debugs.get(key) === held) this.forgetDebug(held);
      throw err;
    }
    return async () => {
      held.listeners.delete(listener);
      if (held.listeners.size === 0 && this.debugs.get(key) === held) await this.ignore(t);
    };
  }

  /** Stops a module's debug stream for every listener. */
  async ignore(target: ModuleTarget, options: CallOptions = {}): Promise<void> {
    const t = normaliseModule(target);
    const entry = this.debugs.get(moduleKey(t));
    if (entry) this.forgetDebug(entry);
    if (!this.socket.isOpen) return;
    await this.request('ignore', { ...t, name: 'ignore' }, options);
  }

  /** Closes for good: every awaited call rejects with ClientClosedError and every `values()` iterator ends. */
  close(): Promise<CloseInfo> {
    return this.socket.close();
  }

  /** Resolves when the client has closed for good; never rejects. */
  closed(): Promise<CloseInfo> {
    return this.socket.closed();
  }

  // --- requests ------------------------------------------------------------------------------------------

  private get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs ?? 30_000;
  }

  private url(): string {
    const url = new URL(this.options.url.replace(/^http/, 'ws'));
    if (!url.pathname.endsWith(controlPath)) url.pathname = url.pathname.replace(/\/$/, '') + controlPath;
    if (this.options.apiKey !== undefined) url.searchParams.set('api-key', this.options.apiKey);
    const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    if (token !== undefined) url.searchParams.set('bearer_token', token);
    return url.toString();
  }

  /**
   * The gateway authenticates the REST API with the same function and the same credential carriers as the
   * upgrade, so a GET there answers what the refused upgrade would have (the plain GET of the socket path
   * itself answers 426 before looking at credentials).
   */
  private async probeCredentials(): Promise<number | undefined> {
    const platform = (globalThis as { fetch?: ControlClientOptions['fetch'] }).fetch;
    // Browsers throw "Illegal invocation" for a fetch called without its global as `this`.
    const fetchFn = this.options.fetch ?? (typeof platform === 'function' ? platform.bind(globalThis) : undefined);
    if (!fetchFn) return undefined;
    const url = new URL(this.url());
    url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
    url.pathname = url.pathname.slice(0, -'/control'.length);
    url.searchParams.set('limit', '1');
    const response = await fetchFn(url.toString(), { method: 'GET' });
    return response.status;
  }

  private request(cmd: ControlCommand, fields: { sys: string; mod: string; index: number; name: string; args?: unknown[] }, options: RequestOptions = {}): Promise<ControlFrameIn> {
    this.socket.start();
    const what = `${cmd} ${describe(fields)}`;
    return settling<ControlFrameIn>(this.socket.clock, what, { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs, signal: options.signal }, (settle) => {
      if (this.socket.isStopped) throw new ClientClosedError('client is closed');
      const send = () => {
        const id = ++this.nextId;
        this.pending.set(id, settle);
        settle.onSettled(() => this.pending.delete(id));
        options.onSent?.(id);
        this.socket.send(JSON.stringify({ id, cmd, ...fields }));
      };
      if (this.socket.isOpen) return send();
      if (options.offline === 'fail' && this.socket.isReconnecting) throw new NotConnectedError(`${what} not sent: the client is reconnecting`);
      settle.onSettled(
        this.socket.onceOpen(() => {
          try {
            send();
          } catch (err) {
            settle.reject(err);
          }
        }, settle.reject),
      );
    });
  }

  /** The error a call asking to fail fast gets while the client is reconnecting; undefined otherwise. */
  private failFast(options: OfflineOptions, what: string): NotConnectedError | undefined {
    if (options.whenOffline !== 'fail' || !this.socket.isReconnecting) return undefined;
    return new NotConnectedError(`${what} not sent: the client is reconnecting`);
  }

  /** A shared operation awaited by one caller with its own deadline and signal. */
  private within<T>(shared: Promise<T>, what: string, options: CallOptions): Promise<T> {
    return settling<T>(this.socket.clock, what, { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs, signal: options.signal }, ({ resolve, reject }) => {
      shared.then(resolve, reject);
    });
  }

  private bindingEntry(target: VariableTarget): BindingEntry {
    const t = normalise(target);
    const key = bindingKey(t);
    let entry = this.bindings.get(key);
    if (!entry) this.bindings.set(key, (entry = { target: t, listeners: new Set(), enders: new Set(), explicit: false, abort: new AbortController() }));
    return entry;
  }

  /**
   * Binds once per socket: a variable already bound (or being bound) on the open socket is not bound again,
   * so watchers coming and going leave no request ids behind.
   */
  private bindOnce(entry: BindingEntry): Promise<BindResult> {
    // A bind still on its way (waiting for a socket, or retried after a drop) serves everyone: the re-bind
    // after a reconnection must not send a second one.
    if (entry.inflight) return entry.inflight;
    if (this.socket.isOpen && entry.bound?.generation === this.socket.generation) return entry.bound.result;
    const result = this.sendBind(entry);
    entry.inflight = result;
    result
      .then(
        () => (entry.bound = { generation: this.socket.generation, result }),
        () => {
          if (entry.bound?.result === result) entry.bound = undefined;
        },
      )
      .finally(() => {
        if (entry.inflight === result) entry.inflight = undefined;
      });
    return result;
  }

  /** Sends a bind; a socket lost before the reply is retried on the next one (bind is idempotent). */
  private async sendBind(entry: BindingEntry): Promise<BindResult> {
    for (;;) {
      try {
        const frame = await this.request('bind', entry.target, { onSent: (id) => this.bindingsById.set(id, entry), signal: entry.abort.signal });
        return { meta: frame.meta ?? metaOf(entry.target) };
      } catch (err) {
        if (this.retryable(err) && this.bindings.get(bindingKey(entry.target)) === entry) continue;
        if (err instanceof ControlError) this.forgetBinding(entry);
        throw err;
      }
    }
  }

  private sendDebug(entry: DebugEntry): Promise<void> {
    if (entry.inflight) return entry.inflight;
    const sending = this.sendDebugOnce(entry).finally(() => {
      if (entry.inflight === sending) entry.inflight = undefined;
    });
    entry.inflight = sending;
    return sending;
  }

  private async sendDebugOnce(entry: DebugEntry): Promise<void> {
    for (;;) {
      try {
        await this.request('debug', { ...entry.target, name: 'debug' }, { onSent: (id) => this.debugsById.set(id, entry), signal: entry.abort.signal });
        return;
      } catch (err) {
        if (this.retryable(err) && this.debugs.get(moduleKey(entry.target)) === entry) continue;
        throw err;
      }
    }
  }

  /** Lost with the socket while the client still wants a connection: the next socket takes it. */
  private retryable(err: unknown): boolean {
    return (err instanceof ConnectionLostError || err instanceof NotConnectedError) && this.socket.isActive && !this.socket.isStopped;
  }

  private async release(entry: BindingEntry, listener: ValueListener): Promise<void> {
    entry.listeners.delete(listener);
    if (entry.listeners.size > 0 || entry.explicit || this.bindings.get(bindingKey(entry.target)) !== entry) return;
    this.forgetBinding(entry);
    if (this.socket.isOpen) await this.request('unbind', entry.target).catch(() => {});
  }

  private forgetBinding(entry: BindingEntry): void {
    const key = bindingKey(entry.target);
    if (this.bindings.get(key) === entry) this.bindings.delete(key);
    for (const [id, e] of this.bindingsById) if (e === entry) this.bindingsById.delete(id);
    entry.abort.abort(new AbortError(`${describe(entry.target)} was unbound before the bind completed`));
    const enders = [...entry.enders];
    entry.enders.clear();
    for (const end of enders) end();
  }

  private forgetDebug(entry: DebugEntry): void {
    const key = moduleKey(entry.target);
    if (this.debugs.get(key) === entry) this.debugs.delete(key);
    for (const [id, e] of this.debugsById) if (e === entry) this.debugsById.delete(id);
    entry.abort.abort(new AbortError(`the debug stream of ${entry.target.sys}/${entry.target.mod} was stopped before it started`));
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
    if (err instanceof ClientClosedError || err instanceof NotConnectedError || err instanceof ConnectionLostError) return;
    this.emit('error', err instanceof SwitchboardError ? err : new SwitchboardError(`${context} failed: ${String(err)}`));
  }

  private dropped(error: SwitchboardError): void {
    this.bindingsById.clear();
    this.debugsById.clear();
    const reason = error instanceof ClientClosedError ? error : new ConnectionLostError(error.message);
    for (const settle of [...this.pending.values()]) settle.reject(reason);
  }

  private closedForGood(): void {
    for (const entry of [...this.bindings.values()]) this.forgetBinding(entry);
    for (const entry of [...this.debugs.values()]) this.forgetDebug(entry);
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
    if (frame.type === 'error') {
      pending.reject(controlErrorFromFrame(frame));
      return;
    }
    // A gateway that answers requests is one worth staying on: the backoff starts from the first step again.
    this.socket.markStable();
    pending.resolve(frame);
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
    for (const listener of [...entry.listeners]) callListener(listener, line);
  }
}

function decodeWith<T>(decode: Decoder<T>, value: unknown, what: string): T {
  try {
    return decode(value);
  } catch (err) {
    throw new UnexpectedValueError(`unexpected value from ${what}: ${err instanceof Error ? err.message : String(err)}`, value, err);
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
