import { type Socket, createConnection } from 'node:net';
import { LineSplitter } from './line-splitter.js';

export interface TcpLineClientOptions {
  host: string;
  port: number;
  /** First reconnect delay; doubles on every failed attempt up to `maxBackoffMs`, reset once connected. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  connectTimeoutMs: number;
  /** Timers come from the module context, so unloading the module cancels a pending reconnect. */
  schedule(delayMs: number, fn: () => void): () => void;
  onConnect(): void;
  onLine(line: string): void;
  onDisconnect(reason: string, retryInMs: number): void;
}

/**
 * A line-oriented TCP connection to a device that reconnects on its own: after a drop, a refused or
 * timed-out connect, it retries with exponential backoff until `close()`.
 */
export class TcpLineClient {
  private socket: Socket | undefined;
  private backoffMs: number;
  private closed = false;
  private cancelRetry: (() => void) | undefined;
  private connected = false;

  constructor(private readonly options: TcpLineClientOptions) {
    this.backoffMs = options.initialBackoffMs;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  start(): void {
    this.connect();
  }

  /** Writes a line (the caller adds the terminator); false when not connected. */
  send(text: string): boolean {
    if (!this.connected || !this.socket) return false;
    this.socket.write(text);
    return true;
  }

  /** Drops the current connection; it is re-established with backoff (used on a protocol desync). */
  reset(reason: string): void {
    this.socket?.destroy(new Error(reason));
  }

  close(): void {
    this.closed = true;
    this.cancelRetry?.();
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connect(): void {
    if (this.closed) return;
    const socket = createConnection({ host: this.options.host, port: this.options.port });
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    const splitter = new LineSplitter();
    let failure = 'connection closed';
    const cancelTimeout = this.options.schedule(this.options.connectTimeoutMs, () => {
      if (!this.connected) socket.destroy(new Error('connect timed out'));
    });
    socket.on('connect', () => {
      cancelTimeout();
      this.connected = true;
      this.backoffMs = this.options.initialBackoffMs;
      this.options.onConnect();
    });
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) this.options.onLine(line);
    });
    socket.on('error', (err) => (failure = err.message));
    socket.on('close', () => {
      cancelTimeout();
      const wasConnected = this.connected;
      this.connected = false;
      if (this.socket === socket) this.socket = undefined;
      if (this.closed) return;
      const retryInMs = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs);
      this.options.onDisconnect(wasConnected ? `connection lost (${failure})` : `cannot connect (${failure})`, retryInMs);
      this.cancelRetry = this.options.schedule(retryInMs, () => this.connect());
    });
  }
}
