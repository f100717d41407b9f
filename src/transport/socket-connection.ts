import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { Connection, Session } from '../core/connection.js';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export type Channel = 'notify' | 'control';

/** Close code for a socket whose unsent buffer passed the high-water mark (documented in README). */
export const slowConsumerCloseCode = 4008;
/** How long a slow consumer has to read its backlog and the close frame before its socket is destroyed. */
const slowConsumerGraceMs = 1_000;
const textFrame = { binary: false } as const;

/** What every connection of one gateway shares. */
export interface ConnectionContext {
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  readonly maxBufferedBytes: number;
  /** Called once, when the socket has closed. */
  readonly forget: (connection: SocketConnection) => void;
}

const connectionOf = Symbol('switchboard.connection');
type LinkedSocket = WebSocket & { [connectionOf]: SocketConnection };

/**
 * One open WebSocket adapted to the Connection port, with the transport's per-socket duties (dead-peer flag,
 * slow-consumer close). A class with prototype methods and module-level `ws` listeners rather than a set of
 * closures: every idle socket pays for whatever is allocated here.
 */
export class SocketConnection implements Connection {
  /** Cleared at each heartbeat; anything heard from the peer sets it again. */
  alive = true;
  private session: Session | undefined;
  private corked = false;

  constructor(
    readonly ws: WebSocket,
    /** The TCP socket under `ws` (the upgrade's socket), corked while frames pile up within one turn. */
    private readonly socket: Duplex,
    readonly id: string,
    readonly remoteAddress: string,
    readonly channel: Channel,
    private readonly context: ConnectionContext,
  ) {
    (ws as LinkedSocket)[connectionOf] = this;
    ws.on('pong', onPong);
    ws.on('message', onMessage);
    ws.on('error', onError);
    ws.on('close', onClose);
  }

  /** Starts handing frames to the session (set once, right after construction). */
  serve(session: Session): void {
    this.session = session;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data: string | Buffer, onWritten?: (err?: Error | null) => void): boolean {
    const { ws } = this;
    if (ws.readyState !== WebSocket.OPEN) return false;
    if (!this.corked) this.cork();
    ws.send(data, textFrame, onWritten);
    return true;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  /**
   * Frames sent to this socket until the end of the current event-loop turn go out in one write: on a busy
   * socket that is one syscall instead of one per frame (the kernel write was three quarters of the
   * gateway's CPU when fanning out control notifies). ws corks and uncorks around each frame itself; the
   * socket's cork count keeps everything queued until uncorkAll.
   */
  private cork(): void {
    this.corked = true;
    this.socket.cork();
    corkedConnections.push(this);
    if (corkedConnections.length === 1) setImmediate(uncorkAll);
  }

  /**
   * @internal End of the turn: the queued frames are handed to the kernel now, and what it did not take is
   * the unsent backlog that the high-water mark applies to.
   */
  uncork(): void {
    this.corked = false;
    this.socket.uncork();
    if (this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > this.context.maxBufferedBytes) this.closeSlowConsumer();
  }

  /**
   * The peer does not read: stop writing, tell it why (queued behind its unread bytes), and cut it off if it
   * does not drain in time. Frames still queued fail, so their messages go back to the broker.
   */
  private closeSlowConsumer(): void {
    const { ws } = this;
    const { log, metrics, maxBufferedBytes } = this.context;
    metrics.backpressureCloses.inc();
    log.warn({ conn: this.id, bufferedBytes: ws.bufferedAmount, maxBufferedBytes }, 'slow consumer: closing');
    ws.close(slowConsumerCloseCode, 'slow consumer');
    setTimeout(() => ws.terminate(), slowConsumerGraceMs).unref();
  }

  /** @internal ws 'message' */
  received(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    this.alive = true;
    const session = this.session;
    if (!session) return;
    try {
      if (isBinary) session.onBinary();
      else session.onText(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8'));
    } catch (err) {
      this.context.log.error({ conn: this.id, err }, 'session failed on a frame');
    }
  }

  /** @internal ws 'error' (a 'close' follows) */
  failed(err: Error): void {
    this.context.log.info({ conn: this.id, reason: err.message }, 'socket error');
  }

  /** @internal ws 'close' */
  closed(code: number): void {
    const { log, metrics, forget } = this.context;
    forget(this);
    metrics.socketsOpen.dec({ channel: this.channel });
    log.info({ conn: this.id, channel: this.channel, code }, 'disconnected');
    try {
      this.session?.onClose();
    } catch (err) {
      log.error({ conn: this.id, err }, 'session failed on close');
    }
  }
}

let corkedConnections: SocketConnection[] = [];

function uncorkAll(): void {
  const connections = corkedConnections;
  corkedConnections = [];
  for (const connection of connections) connection.uncork();
}

function onPong(this: WebSocket): void {
  connectionFor(this).alive = true;
}

function onMessage(this: WebSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
  connectionFor(this).received(data, isBinary);
}

function onError(this: WebSocket, err: Error): void {
  connectionFor(this).failed(err);
}

function onClose(this: WebSocket, code: number): void {
  connectionFor(this).closed(code);
}

function connectionFor(ws: WebSocket): SocketConnection {
  return (ws as LinkedSocket)[connectionOf];
}
