import { createRequire } from 'node:module';
import { pino } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { Logger } from '../core/logger.js';

/** `auto`: pretty for a person at a terminal (stdout is a TTY), JSON for everything else (files, pipes, collectors). */
export type LogFormat = 'auto' | 'json' | 'pretty';

const require = createRequire(import.meta.url);

/**
 * Structured logs: JSON lines, or pino-pretty's readable lines when `format` asks for it. Callers never pass
 * secrets; redaction is the second line of defence for fields that could carry one by mistake. A given
 * `destination` (tests) always gets JSON.
 */
export function createLogger(level: string, nodeId: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const pretty = destination === undefined && (format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true));
  return pino(
    {
      level,
      base: { node: nodeId },
      redact: {
        paths: [
          'token',
          'authorizationToken',
          '*.authorizationToken',
          'apiKey',
          'headers.authorization',
          'headers["x-api-key"]',
          'headers.cookie',
          'req.headers.authorization',
          'req.headers["x-api-key"]',
          'req.headers.cookie',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    pretty ? prettyStream() : destination,
  ) as unknown as Logger;
}

/**
 * Loaded only when asked for, so JSON deployments never load it. Synchronous so that the last lines before
 * an exit are not lost; the node id leads each line so the lines of a local fleet stay apart.
 */
function prettyStream(): pino.DestinationStream {
  const build = require('pino-pretty') as typeof PinoPretty;
  return build({
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,node',
    messageFormat: '[{node}] {msg}',
    singleLine: true,
  });
}
