import { pino } from 'pino';
import type { Logger } from '../core/logger.js';

/**
 * Structured JSON logs. Callers never pass secrets; redaction is the second line of defence for fields
 * that could carry one by mistake.
 */
export function createLogger(level: string, nodeId: string, destination?: pino.DestinationStream): Logger {
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
    destination,
  ) as unknown as Logger;
}
