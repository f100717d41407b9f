import { Writable } from 'node:stream';
import type { Logger } from '../../src/core/logger.js';
import { createLogger } from '../../src/observability/logger.js';

/** A real gateway logger whose JSON lines are kept, so a test can await a line instead of sleeping. */
export function captureLogs(level = 'info'): { logger: Logger; lines: Array<Record<string, any>>; waitFor(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  const waiters: Array<{ match: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, any>;
        lines.push(line);
        for (const w of [...waiters]) if (w.match(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
      }
      done();
    },
  });
  return {
    logger: createLogger(level, 'test', sink),
    lines,
    waitFor(match, timeoutMs = 10_000) {
      const found = lines.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}
