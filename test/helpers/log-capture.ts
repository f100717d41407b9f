import { Writable } from 'node:stream';
import type { Logger } from '../../src/core/logger.js';
import { createLogger } from '../../src/observability/logger.js';

export type LogLine = Record<string, any>;

export interface LogCapture {
  /** A real gateway logger (pino, JSON lines): what a test asserts on is what an operator would read. */
  logger: Logger;
  /** Every line so far, parsed, child bindings included. */
  lines: LogLine[];
  /** Resolves with the first line that matches, as soon as it is written (rejects after `timeoutMs`). */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with `check(lines)` once it is defined, checked at every new line (rejects after `timeoutMs`). */
  until<T>(check: (lines: LogLine[]) => T | undefined, timeoutMs?: number): Promise<T>;
}

/** The one log capture of the tests: a test awaits a line instead of sleeping. */
export function captureLogs(level = 'info'): LogCapture {
  const lines: LogLine[] = [];
  let waiters: Array<() => boolean> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        lines.push(JSON.parse(text) as LogLine);
        waiters = waiters.filter((settled) => !settled());
      }
      done();
    },
  });
  const until = <T>(check: (all: LogLine[]) => T | undefined, timeoutMs = 10_000): Promise<T> => {
    const now = check(lines);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const found = check(lines);
        if (found === undefined) return false;
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  return {
    logger: createLogger(level, 'test', sink),
    lines,
    until,
    waitFor: (match, timeoutMs) => until((all) => all.find(match), timeoutMs),
  };
}
