import { WebSocket } from 'ws';

/**
 * A test WebSocket client that queues every frame it receives, so a test awaits the next frame (or one
 * matching a predicate) instead of sleeping.
 */
export class TestClient {
  readonly frames: string[] = [];
  private waiters: Array<{ match: (f: string) => boolean; resolve: (f: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private cursor = 0;
  closeCode: number | undefined;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${String((data as Buffer).length)}>` : (data as Buffer).toString('utf8');
      this.frames.push(text);
      this.flush();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`socket closed with ${code} while waiting for a frame`));
        }
        resolve(code);
      }),
    );
  }

  static async connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  send(data: unknown): void {
    this.ws.send(typeof data === 'string' ? data : JSON.stringify(data));
  }

  /** The next frame not yet consumed (optionally the next one matching `match`, skipping none). */
  next(timeoutMs = 10_000): Promise<string> {
    return this.nextMatching(() => true, timeoutMs);
  }

  async nextJson<T = any>(timeoutMs = 10_000): Promise<T> {
    return JSON.parse(await this.next(timeoutMs)) as T;
  }

  /** Consumes frames in order until one matches; the skipped ones are consumed too. */
  nextMatching(match: (frame: string) => boolean, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no matching frame within ${timeoutMs} ms; received: ${this.frames.slice(-5).join(' | ')}`));
      }, timeoutMs);
      this.waiters.push({ match, resolve, reject, timer });
      this.flush();
    });
  }

  /** Frames received and not consumed yet. */
  unread(): string[] {
    return this.frames.slice(this.cursor);
  }

  async request<T = any>(data: unknown, timeoutMs = 10_000): Promise<T> {
    this.send(data);
    return this.nextJson<T>(timeoutMs);
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close();
    return this.closed;
  }

  private flush(): void {
    while (this.waiters.length > 0 && this.cursor < this.frames.length) {
      const frame = this.frames[this.cursor++]!;
      const waiter = this.waiters[0]!;
      if (waiter.match(frame)) {
        this.waiters.shift();
        clearTimeout(waiter.timer);
        waiter.resolve(frame);
      }
    }
  }
}

export const join = (token: string, correlationId = 'join') => ({
  action: 'joinChannel',
  correlationId,
  data: { authorizationToken: token },
});
export const leave = (channelId: string, correlationId = 'leave') => ({
  action: 'leaveChannel',
  correlationId,
  data: { channelId },
});
