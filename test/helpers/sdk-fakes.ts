import { ControlClient, type ControlClientOptions, NotificationClient, type NotificationClientOptions } from '../../sdk/src/index.js';
import type { WebSocketLike } from '../../sdk/src/websocket.js';

/**
 * The SDK's side of a socket, not the gateway's (session tests use FakeConnection, the server-side
 * `Connection` port): a browser-style WebSocket double for SDK unit tests, injected through the SDK's `WebSocket` option. The test plays the
 * server: `accept()` opens, `deliver()` sends a frame to the client, `drop()` ends the socket. Every
 * instance is recorded in `FakeWebSocket.instances`; `nextInstance()` awaits the next one created.
 */
export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];
  private static waiters: Array<(ws: FakeWebSocket) => void> = [];
  readyState = 0;
  readonly sent: string[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  private sentWaiters: Array<{ match: (f: any) => boolean; resolve: (f: any) => void }> = [];
  private sentCursor = 0;

  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this);
    FakeWebSocket.waiters.shift()?.(this);
  }

  static reset(): void {
    FakeWebSocket.instances = [];
    FakeWebSocket.waiters = [];
  }

  /** The most recently created instance, or the next one to be created. */
  static nextInstance(): Promise<FakeWebSocket> {
    return new Promise((resolve) => FakeWebSocket.waiters.push(resolve));
  }

  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** A refused upgrade as browsers report it: an error event that says nothing, then close 1006. */
  refuseSilently(): void {
    this.readyState = 3;
    this.onerror?.({ type: 'error' });
    this.onclose?.({ code: 1006, reason: '' });
  }

  refuse(status: number): void {
    this.readyState = 3;
    this.onerror?.({ message: `Unexpected server response: ${status}` });
    this.onclose?.({ code: 1006, reason: '' });
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(data);
    this.flush();
  }

  /** Set when the client closed this socket. */
  closedByClient: { code?: number | undefined; reason?: string | undefined } | undefined;

  close(code?: number, reason?: string): void {
    this.readyState = 3;
    this.closedByClient = { code, reason };
  }

  /** Resolves with the next frame the client sends (parsed as JSON unless it is `ping`) matching `match`. */
  nextSent<T = any>(match: (frame: T) => boolean = () => true): Promise<T> {
    return new Promise((resolve) => {
      this.sentWaiters.push({ match, resolve });
      this.flush();
    });
  }

  private flush(): void {
    while (this.sentWaiters.length > 0 && this.sentCursor < this.sent.length) {
      const raw = this.sent[this.sentCursor++]!;
      const frame = raw === 'ping' ? raw : JSON.parse(raw);
      const waiter = this.sentWaiters[0]!;
      if (waiter.match(frame)) {
        this.sentWaiters.shift();
        waiter.resolve(frame);
      }
    }
  }
}

/** What the gateway answers to a successful join. */
export const joinedReply = (correlationId: string, channelId = 'alice') => ({
  correlationId,
  status: 200,
  data: { channelId, message: 'Successfully joined profile channel.' },
});

/** Whether a promise has settled once everything queued so far has run (no timers involved). */
export async function state(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let result: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (result = 'resolved'),
    () => (result = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return result;
}

/** A NotificationClient on a FakeWebSocket, joined as alice. */
export async function joinedNotify(options: Partial<NotificationClientOptions> = {}) {
  const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 100, jitter: 0 }, ...options });
  const created = FakeWebSocket.nextInstance();
  const joining = client.join('tok-alice');
  const ws = await created;
  ws.accept();
  ws.deliver(joinedReply((await ws.nextSent()).correlationId));
  await joining;
  return { client, ws };
}

/** A ControlClient on a FakeWebSocket, connected. */
export async function connectedControl(options: Partial<ControlClientOptions> = {}) {
  const client = new ControlClient({ url: 'ws://gateway.test', apiKey: 'k', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 100, jitter: 0 }, ...options });
  const created = FakeWebSocket.nextInstance();
  const connecting = client.connect();
  const ws = await created;
  ws.accept();
  await connecting;
  return { client, ws };
}
