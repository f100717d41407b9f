import { type BackoffOptions, backoffDelayMs } from './backoff.js';
import { AuthenticationError, ClientClosedError, ConnectionLostError, SwitchboardError } from './errors.js';
import { StatusStream } from './status.js';
import { messageText, OPEN, refusedUpgradeStatus, resolveWebSocket, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

/** Options shared by both clients. */
export interface ConnectionOptions {
  /** WebSocket implementation; default: the platform's, else `ws` (loaded lazily). */
  WebSocket?: WebSocketConstructor;
  /** Reconnection policy, or false to close for good when the socket drops. */
  reconnect?: BackoffOptions | false;
  /**
   * Every this many ms the client sends the text `ping`; a socket that has sent nothing by the next tick
   * is treated as dead and replaced. 0 disables. Default 20 s.
   */
  heartbeatIntervalMs?: number;
  /** Randomness for the backoff jitter (tests pass a fixed one). */
  random?: () => number;
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
}

/**
 * One logical connection over successive sockets: connects, reconnects with backoff and jitter, keeps a
 * heartbeat, and reports a status stream (connecting / connected / reconnecting / closed). A refused
 * upgrade (401/403, when the implementation tells it) is final: no retry.
 */
export class ManagedSocket {
  readonly status = new StatusStream();
  private ws: WebSocketLike | undefined;
  private Ctor: WebSocketConstructor | undefined;
  private attempt = 0;
  private started = false;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private heardSinceBeat = true;
  private openWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  private readonly closedPromise: Promise<CloseInfo>;
  private resolveClosed!: (info: CloseInfo) => void;
  /** Incremented on every open: work bound to one socket checks it is still the current one. */
  generation = 0;

  constructor(
    private readonly hooks: SocketHooks,
    private readonly options: ConnectionOptions,
  ) {
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.ws !== undefined && this.ws.readyState === OPEN && this.status.value.status === 'connected';
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Starts connecting (once); resolves when connected. */
  start(): Promise<void> {
    if (!this.started && !this.stopped) {
      this.started = true;
      this.status.push({ status: 'connecting' });
      void this.open();
    }
    return this.whenOpen();
  }

  /** Resolves when the socket is open (at once if it is); rejects with ClientClosedError once stopped. */
  whenOpen(): Promise<void> {
    if (this.stopped) return Promise.reject(new ClientClosedError('client is closed'));
    if (this.isOpen) return Promise.resolve();
    return new Promise((resolve, reject) => this.openWaiters.add({ resolve, reject }));
  }

  /** Sends one text frame; throws ConnectionLostError when no socket is open. */
  send(text: string): void {
    if (!this.isOpen) throw new ConnectionLostError('not connected');
    this.ws!.send(text);
  }

  /** Resolves once the client is closed for good; never rejects. */
  closed(): Promise<CloseInfo> {
    return this.closedPromise;
  }

  close(): Promise<CloseInfo> {
    this.finish({ byClient: true });
    return this.closedPromise;
  }

  private async open(): Promise<void> {
    try {
      this.Ctor ??= await resolveWebSocket(this.options.WebSocket);
    } catch (err) {
      this.finish({ byClient: false, error: new SwitchboardError((err as Error).message) });
      return;
    }
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this.Ctor(this.hooks.url());
    } catch (err) {
      this.finish({ byClient: false, error: new SwitchboardError(`cannot open WebSocket: ${(err as Error).message}`) });
      return;
    }
    this.ws = ws;
    let refusedStatus: number | undefined;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.generation += 1;
      this.startHeartbeat();
      this.status.push({ status: 'connected' });
      for (const waiter of [...this.openWaiters]) waiter.resolve();
      this.openWaiters.clear();
      this.hooks.onOpen();
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
        this.detach();
        const error = new AuthenticationError(`the gateway refused the connection (HTTP ${refusedStatus})`, refusedStatus);
        this.hooks.onDrop(error);
        this.finish({ byClient: false, error });
        return;
      }
      const reason = refusedStatus !== undefined ? `HTTP ${refusedStatus}` : `code ${event.code}${event.reason ? `: ${event.reason}` : ''}`;
      this.dropped(new ConnectionLostError(`connection lost (${reason})`));
    };
  }

  /** The current socket ended: fail its in-flight work and schedule the next attempt. */
  private dropped(error: ConnectionLostError): void {
    this.detach();
    this.hooks.onDrop(error);
    if (this.stopped) return;
    if (this.options.reconnect === false) {
      this.finish({ byClient: false, error });
      return;
    }
    this.attempt += 1;
    const max = this.options.reconnect?.maxAttempts;
    if (max !== undefined && this.attempt > max) {
      this.finish({ byClient: false, error: new ConnectionLostError(`gave up after ${max} reconnection attempts`) });
      return;
    }
    const delayMs = backoffDelayMs(this.attempt, this.options.reconnect, this.options.random);
    this.status.push({ status: 'reconnecting', attempt: this.attempt, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delayMs);
  }

  private detach(): void {
    const ws = this.ws;
    this.ws = undefined;
    this.stopHeartbeat();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(1000, 'client closed');
    } catch {
      // closing a socket that is still connecting may throw in some implementations; it is gone either way
    }
  }

  private startHeartbeat(): void {
    const interval = this.options.heartbeatIntervalMs ?? 20_000;
    if (interval <= 0) return;
    this.heardSinceBeat = true;
    this.heartbeatTimer = setInterval(() => {
      if (!this.heardSinceBeat) {
        this.dropped(new ConnectionLostError('heartbeat: no answer from the gateway'));
        return;
      }
      this.heardSinceBeat = false;
      try {
        this.ws?.send('ping');
      } catch {
        // the close event follows
      }
    }, interval);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private finish(info: CloseInfo): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const hadSocket = this.ws !== undefined;
    this.detach();
    if (hadSocket) this.hooks.onDrop(new ClientClosedError('client closed'));
    const error = info.error ?? new ClientClosedError('client closed');
    for (const waiter of [...this.openWaiters]) waiter.reject(error);
    this.openWaiters.clear();
    this.status.push({ status: 'closed', ...(info.error && { error: info.error }) });
    this.resolveClosed(info);
  }
}
