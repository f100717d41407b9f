import { type BackoffOptions, backoffDelayMs, defaultBackoff, drainCloseCodes } from './backoff.js';
import { AuthenticationError, ClientClosedError, ConnectionLostError, NotConnectedError, SwitchboardError } from './errors.js';
import { StatusStream } from './status.js';
import { type CallOptions, type Clock, settling, systemClock } from './timing.js';
import { messageText, OPEN, refusedUpgradeStatus, resolveWebSocket, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

/** Options shared by both clients. */
export interface ConnectionOptions {
  /** WebSocket implementation; default: the platform's, else `ws` (loaded lazily). */
  WebSocket?: WebSocketConstructor;
  /** Reconnection policy, or false to close for good when the socket drops. */
  reconnect?: BackoffOptions | false;
  /**
   * Asked when the gateway closes the socket (`code` 1006 when it dropped without a close frame): false
   * closes the client for good (every awaited call rejects with ConnectionLostError carrying the code),
   * true reconnects with the backoff. Default: reconnect. The notification client never reconnects a socket
   * it has no channel to join on, whatever this says: it goes `disconnected` until the next `join()`.
   */
  shouldReconnect?: (code: number, reason: string) => boolean;
  /**
   * Every this many ms the client sends the text `ping`; a socket that has sent nothing by the next tick
   * is treated as dead and replaced. 0 disables. Default 20 s.
   */
  heartbeatIntervalMs?: number;
  /** Randomness for the backoff jitter (tests pass a fixed one). */
  random?: () => number;
  /** Timers of the client (reconnection, heartbeat, timeouts); tests pass a fake one. Default: the platform's, unref'd in Node. */
  clock?: Clock;
}

/** How a client ended: `closed()` resolves with it and never rejects. */
export interface CloseInfo {
  /** True when `close()` was called; false when the client gave up (refused, or out of attempts). */
  byClient: boolean;
  error?: SwitchboardError;
}

export interface SocketHooks {
  url(): string;
  /** After every successful open, the first and each reconnection (re-join, re-bind here). */
  onOpen(): void;
  /** Every text frame except `pong`. */
  onText(text: string): void;
  /** The socket ended (for any reason): fail what was in flight on it. */
  onDrop(error: SwitchboardError): void;
  /** The client closed for good (by `close()` or by giving up): settle everything still awaited. */
  onClosed(info: CloseInfo): void;
  /** The gateway closed with 4008: it dropped this client for reading too slowly. */
  onSlowConsumer?(info: { code: number; reason: string }): void;
  /**
   * False when the client has nothing to hold a socket for: a socket that ends then is not replaced (the
   * status goes `disconnected`) until the next `start()`.
   */
  wantsConnection?(): boolean;
  /**
   * Asked after a socket closed without ever opening when the WebSocket implementation did not tell why
   * (browsers never do): the HTTP status the gateway gives the same credentials, or undefined when unknown.
   */
  probeRefusal?(): Promise<number | undefined>;
}

/** How long the credentials probe may take before the close counts as an ordinary drop. */
const probeTimeoutMs = 10_000;

/**
 * One logical connection over successive sockets: connects, reconnects with backoff and jitter, keeps a
 * heartbeat, and reports a status stream (connecting / connected / reconnecting / disconnected / closed).
 * The attempt count starts again only after a stable connection, so a gateway that accepts and drops at
 * once is retried with growing delays and `maxAttempts` is reached. A refused upgrade (401/403) is final.
 */
export class ManagedSocket {
  readonly status = new StatusStream();
  readonly clock: Clock;
  private ws: WebSocketLike | undefined;
  private Ctor: WebSocketConstructor | undefined;
  private attempt = 0;
  /** A connection is wanted: between start() and disconnect() (or going idle). */
  private active = false;
  private stopped = false;
  /** Bumped whenever the client starts, disconnects or stops: an asynchronous step of an older run gives up. */
  private run = 0;
  private cancelReconnect: (() => void) | undefined;
  private cancelHeartbeat: (() => void) | undefined;
  private cancelStable: (() => void) | undefined;
  private heardSinceBeat = true;
  private readonly openWaiters = new Set<{ opened: () => void; failed: (err: SwitchboardError) => void }>();
  private readonly closedPromise: Promise<CloseInfo>;
  private resolveClosed!: (info: CloseInfo) => void;
  /** Incremented on every open: work bound to one socket checks it is still the current one. */
  generation = 0;

  constructor(
    private readonly hooks: SocketHooks,
    private readonly options: ConnectionOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.ws !== undefined && this.ws.readyState === OPEN && this.status.value.status === 'connected';
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** A connection is wanted (connecting, connected or reconnecting), as opposed to disconnected or closed. */
  get isActive(): boolean {
    return this.active;
  }

  /** Reconnecting after losing a connection: the state in which fail-fast calls fail at once. */
  get isReconnecting(): boolean {
    return this.status.value.status === 'reconnecting';
  }

  /** Starts connecting unless connected, connecting or closed for good. */
  start(): void {
    if (this.stopped || this.active) return;
    this.active = true;
    this.run += 1;
    this.status.push({ status: 'connecting' });
    void this.open(this.run);
  }

  /** Starts if needed and resolves once open; rejects with ClientClosedError once closed, NotConnectedError on disconnect(). */
  connect(options: CallOptions = {}, defaultTimeoutMs = Infinity): Promise<void> {
    this.start();
    return settling<void>(this.clock, 'connect', { timeoutMs: options.timeoutMs ?? defaultTimeoutMs, signal: options.signal }, ({ resolve, reject, onSettled }) =>
      onSettled(this.onceOpen(resolve, reject)),
    );
  }

  /**
   * Calls `opened` once a socket is open (at once if one is), `failed` when the client closes or
   * disconnects first. Returns the function that withdraws the wait.
   */
  onceOpen(opened: () => void, failed: (err: SwitchboardError) => void): () => void {
    if (this.stopped) {
      failed(new ClientClosedError('client is closed'));
      return () => {};
    }
    if (this.isOpen) {
      opened();
      return () => {};
    }
    const waiter = { opened, failed };
    this.openWaiters.add(waiter);
    return () => this.openWaiters.delete(waiter);
  }

  /** Sends one text frame; throws NotConnectedError when no socket is open. */
  send(text: string): void {
    if (!this.isOpen) throw new NotConnectedError('not connected');
    this.ws!.send(text);
  }

  /** The connection works (a join, a first reply): the next drop starts the backoff from the first step again. */
  markStable(): void {
    this.attempt = 0;
    this.cancelStable?.();
    this.cancelStable = undefined;
  }

  /** Resolves once the client is closed for good; never rejects. */
  closed(): Promise<CloseInfo> {
    return this.closedPromise;
  }

  close(): Promise<CloseInfo> {
    this.finish({ byClient: true });
    return this.closedPromise;
  }

  /**
   * Closes the socket and stops reconnecting, without closing the client: `start()` connects again. Calls
   * waiting for a socket reject with NotConnectedError; requests in flight with ConnectionLostError.
   */
  disconnect(code?: number, reason?: string): void {
    if (this.stopped || !this.active) return;
    const hadSocket = this.ws !== undefined;
    this.detach();
    if (hadSocket) this.hooks.onDrop(new ConnectionLostError('disconnected by the client'));
    this.goIdle(new NotConnectedError('disconnected by the client'), code, reason);
  }

  private goIdle(error: SwitchboardError, code?: number, reason?: string): void {
    this.active = false;
    this.run += 1;
    this.attempt = 0;
    this.cancelReconnect?.();
    this.cancelReconnect = undefined;
    this.failWaiters(error);
    this.status.push({ status: 'disconnected', ...(code !== undefined && { code }), ...(reason && { reason }) });
  }

  private async open(run: number): Promise<void> {
    try {
      this.Ctor ??= await resolveWebSocket(this.options.WebSocket);
    } catch (err) {
      if (run === this.run) this.finish({ byClient: false, error: new SwitchboardError((err as Error).message) });
      return;
    }
    if (run !== this.run) return;
    let ws: WebSocketLike;
    try {
      ws = new this.Ctor(this.hooks.url());
    } catch (err) {
      this.finish({ byClient: false, error: new SwitchboardError(`cannot open WebSocket: ${(err as Error).message}`) });
      return;
    }
    this.ws = ws;
    let refusedStatus: number | undefined;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.generation += 1;
      this.startHeartbeat(ws);
      this.startStableTimer();
      this.status.push({ status: 'connected' });
      this.hooks.onOpen();
      const waiters = [...this.openWaiters];
      this.openWaiters.clear();
      for (const waiter of waiters) waiter.opened();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.heardSinceBeat = true;
      const text = messageText(event.data);
      if (text === undefined || text === 'pong') return;
      this.hooks.onText(text);
    };
    ws.onerror = (event) => {
      refusedStatus ??= refusedUpgradeStatus(event);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      if (refusedStatus === 401 || refusedStatus === 403) {
        this.refused(refusedStatus);
        return;
      }
      if (!opened && refusedStatus === undefined && this.hooks.probeRefusal) {
        this.detach();
        void this.probe(run, event.code, event.reason);
        return;
      }
      const why = refusedStatus !== undefined ? `HTTP ${refusedStatus}` : `code ${event.code}${event.reason ? `: ${event.reason}` : ''}`;
      this.dropped(event.code, event.reason, `connection lost (${why})`);
    };
  }

  /** A socket that never opened, the implementation silent about why: ask the gateway over HTTP. */
  private async probe(run: number, code: number, reason: string): Promise<void> {
    let status: number | undefined;
    try {
      status = await settling<number | undefined>(this.clock, 'credentials probe', { timeoutMs: probeTimeoutMs }, ({ resolve, reject }) => {
        this.hooks.probeRefusal!().then(resolve, reject);
      });
    } catch {
      status = undefined; // unreachable, blocked by CORS, too slow: nothing learnt, an ordinary drop
    }
    if (run !== this.run || this.stopped) return;
    if (status === 401 || status === 403) {
      this.refused(status);
      return;
    }
    this.dropped(code, reason, `connection lost (code ${code}${reason ? `: ${reason}` : ''})`);
  }

  private refused(status: number): void {
    this.detach();
    const error = new AuthenticationError(`the gateway refused the credentials (HTTP ${status})`, status);
    this.hooks.onDrop(error);
    this.finish({ byClient: false, error });
  }

  /** The current socket ended: fail its in-flight work, then reconnect, go idle or give up. */
  private dropped(code: number, reason: string, message: string): void {
    const hadSocket = this.ws !== undefined;
    this.detach();
    const error = new ConnectionLostError(message, code, reason);
    if (hadSocket) this.hooks.onDrop(error);
    if (this.stopped || !this.active) return;
    if (code === 4008) this.hooks.onSlowConsumer?.({ code, reason });
    if (this.hooks.wantsConnection && !this.hooks.wantsConnection()) {
      this.goIdle(new NotConnectedError('no socket: the client has nothing to hold one for'), code, reason);
      return;
    }
    if (this.options.reconnect === false || (this.options.shouldReconnect && !this.options.shouldReconnect(code, reason))) {
      this.finish({ byClient: false, error });
      return;
    }
    this.attempt += 1;
    const policy = { ...defaultBackoff, ...this.options.reconnect };
    if (policy.maxAttempts !== undefined && this.attempt > policy.maxAttempts) {
      this.finish({ byClient: false, error: new ConnectionLostError(`gave up after ${policy.maxAttempts} reconnection attempts (last: ${message})`, code, reason) });
      return;
    }
    const random = this.options.random ?? Math.random;
    let delayMs = backoffDelayMs(this.attempt, policy, random);
    if (drainCloseCodes.has(code)) {
      const window = Math.max(backoffDelayMs(this.attempt, { ...policy, jitter: 0 }), policy.drainSpreadMs);
      delayMs = Math.round(random() * window);
    }
    this.status.push({ status: 'reconnecting', attempt: this.attempt, delayMs, error, code, ...(reason && { reason }) });
    const run = this.run;
    this.cancelReconnect = this.clock.schedule(delayMs, () => {
      this.cancelReconnect = undefined;
      if (run === this.run) void this.open(run);
    });
  }

  private detach(): void {
    const ws = this.ws;
    this.ws = undefined;
    this.cancelHeartbeat?.();
    this.cancelHeartbeat = undefined;
    this.cancelStable?.();
    this.cancelStable = undefined;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(1000, 'client closed');
    } catch {
      // closing a socket that is still connecting may throw in some implementations; it is gone either way
    }
  }

  private startStableTimer(): void {
    const stableAfterMs = (this.options.reconnect || {}).stableAfterMs ?? defaultBackoff.stableAfterMs;
    this.cancelStable = this.clock.schedule(
      stableAfterMs,
      () => {
        this.cancelStable = undefined;
        this.attempt = 0;
      },
      { weak: true },
    );
  }

  private startHeartbeat(ws: WebSocketLike): void {
    const interval = this.options.heartbeatIntervalMs ?? 20_000;
    if (interval <= 0) return;
    this.heardSinceBeat = true;
    const beat = () => {
      this.cancelHeartbeat = undefined;
      if (this.ws !== ws) return;
      if (!this.heardSinceBeat) {
        this.dropped(1006, '', 'heartbeat: no answer from the gateway');
        return;
      }
      this.heardSinceBeat = false;
      try {
        ws.send('ping');
      } catch {
        // the close event follows
      }
      this.cancelHeartbeat = this.clock.schedule(interval, beat, { weak: true });
    };
    this.cancelHeartbeat = this.clock.schedule(interval, beat, { weak: true });
  }

  private failWaiters(error: SwitchboardError): void {
    const waiters = [...this.openWaiters];
    this.openWaiters.clear();
    for (const waiter of waiters) waiter.failed(error);
  }

  private finish(info: CloseInfo): void {
    if (this.stopped) return;
    this.stopped = true;
    this.active = false;
    this.run += 1;
    this.cancelReconnect?.();
    this.cancelReconnect = undefined;
    const hadSocket = this.ws !== undefined;
    this.detach();
    if (hadSocket) this.hooks.onDrop(new ClientClosedError('client closed'));
    this.failWaiters(info.error ?? new ClientClosedError('client closed'));
    this.status.push({ status: 'closed', ...(info.error && { error: info.error }) });
    this.hooks.onClosed(info);
    this.resolveClosed(info);
  }
}
