import type { Connection } from '../../src/core/connection.js';

/** A socket for unit tests of the sessions: records the frames sent and lets a test await the next one. */
export class FakeConnection implements Connection {
  readonly id = 'fake-1';
  readonly remoteAddress = '127.0.0.9';
  readonly bufferedAmount = 0;
  readonly frames: string[] = [];
  /** The close code, once the session closed the socket. */
  closedWith: number | undefined;
  private cursor = 0;
  private waiters: Array<() => void> = [];

  send(data: string | Buffer, onWritten?: (err?: Error | null) => void): boolean {
    if (!this.isOpen) return false;
    this.frames.push(String(data));
    for (const w of this.waiters.splice(0)) w();
    if (onWritten) setImmediate(onWritten);
    return true;
  }

  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  close(code = 1000): void {
    this.closedWith = code;
  }

  /** The next frame not read yet, as soon as it is sent (no polling); rejects if none comes in time. */
  async next(timeoutMs = 2_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.frames.length) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no frame within ${timeoutMs} ms; got ${this.frames.join(' | ')}`)), deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames[this.cursor++]!;
  }

  unread(): string[] {
    return this.frames.slice(this.cursor);
  }
}
