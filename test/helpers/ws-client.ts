import assert from 'node:assert/strict';
import { after } from 'node:test';
import { WebSocket } from 'ws';
import { type Contract, type ContractChannel, loadContract } from './asyncapi-contract.js';

/**
 * Every frame a TestClient receives must be a gateway message of docs/asyncapi.yaml for its channel, so
 * every integration test doubles as a check of the contract. A frame that matches none fails the next read
 * of that client and, after its tests, the test file.
 */
let contract: Promise<Contract> | undefined;
const contractViolations: string[] = [];
// A root-level hook of the test file that imports this helper: a violation fails that file's run as a
// reported test failure, with the frames, rather than through the process's exit code.
after(() => {
  assert.deepEqual(contractViolations.slice(0, 10), [], 'frames not described by docs/asyncapi.yaml');
});

const channelOf = (url: string): ContractChannel => (new URL(url).pathname === '/api/engine/v2/systems/control' ? 'control' : 'notify');

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
  /** Headers of the gateway's 101 answer (e.g. `x-switchboard-node`: which node or worker took the socket). */
  upgradeHeaders: Record<string, string | string[] | undefined> = {};

  private violation: string | undefined;

  private constructor(
    readonly ws: WebSocket,
    checkFrame: (text: string) => boolean,
  ) {
    ws.once('upgrade', (res) => (this.upgradeHeaders = res.headers));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? `<binary ${String((data as Buffer).length)}>` : (data as Buffer).toString('utf8');
      if (isBinary || !checkFrame(text)) {
        this.violation ??= text.slice(0, 300);
        contractViolations.push(text.slice(0, 300));
      }
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
    const loaded = await (contract ??= loadContract());
    const channel = channelOf(url);
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws, (text) => loaded.match(channel, 'server', text).length > 0);
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
    if (this.violation !== undefined) return Promise.reject(new Error(`frame not described by docs/asyncapi.yaml: ${this.violation}`));
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
