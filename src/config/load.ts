import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';
import { describeUnknownKey, knownKeysAt } from './unknown-keys.js';

/** Environment variable -> config path, and how to read its text. */
const envBindings: ReadonlyArray<{ env: string; path: string[]; read: 'string' | 'int' | 'json' }> = [
  { env: 'PORT', path: ['port'], read: 'int' },
  { env: 'HOST', path: ['host'], read: 'string' },
  { env: 'LOG_LEVEL', path: ['logLevel'], read: 'string' },
  { env: 'LOG_FORMAT', path: ['logFormat'], read: 'string' },
  { env: 'AMQP_URL', path: ['amqpUrl'], read: 'string' },
  { env: 'REDIS_URL', path: ['redisUrl'], read: 'string' },
  { env: 'TLS_CERT_FILE', path: ['tls', 'certFile'], read: 'string' },
  { env: 'TLS_KEY_FILE', path: ['tls', 'keyFile'], read: 'string' },
  { env: 'NODE_ID', path: ['nodeId'], read: 'string' },
  { env: 'WORKERS', path: ['workers'], read: 'int' },
  { env: 'QUEUE_PREFIX', path: ['notify', 'queuePrefix'], read: 'string' },
  { env: 'JOIN_DEADLINE_MS', path: ['notify', 'joinDeadlineMs'], read: 'int' },
  { env: 'RETENTION_MAX_LENGTH', path: ['notify', 'retention', 'maxLength'], read: 'int' },
  { env: 'RETENTION_MESSAGE_TTL_MS', path: ['notify', 'retention', 'messageTtlMs'], read: 'int' },
  { env: 'RETENTION_QUEUE_EXPIRES_MS', path: ['notify', 'retention', 'queueExpiresMs'], read: 'int' },
  { env: 'HEARTBEAT_INTERVAL_MS', path: ['heartbeatIntervalMs'], read: 'int' },
  { env: 'EXEC_TIMEOUT_MS', path: ['control', 'execTimeoutMs'], read: 'int' },
  { env: 'REDIS_KEY_PREFIX', path: ['control', 'redisKeyPrefix'], read: 'string' },
  /** The whole token verifier section as JSON, e.g. {"kind":"jwt","secret":"...","profileClaim":"sub"}. */
  { env: 'TOKEN_VERIFIER', path: ['tokens'], read: 'json' },
];

export const defaultConfigFile = resolve(dirname(fileURLToPath(import.meta.url)), '../../../config/demo.json');

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file it was read from. Relative paths in it resolve against its folder. */
  file: string;
}

/**
 * Reads defaults < file < environment and validates the result. Throws ConfigError listing every problem,
 * each naming the key (and the environment variable it came from).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): LoadedConfig {
  const problems: string[] = [];
  const file = env.SWITCHBOARD_CONFIG ? resolve(env.SWITCHBOARD_CONFIG) : defaultConfigFile;
  let raw: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: must hold a JSON object`);
    } else {
      raw = parsed as Record<string, unknown>;
    }
  } catch (err) {
    problems.push(`${file}: ${(err as Error).message}`);
  }

  const fromEnv = new Map<string, string>();
  for (const binding of envBindings) {
    const text = env[binding.env];
    if (text === undefined || text === '') continue;
    fromEnv.set(binding.path.join('.'), binding.env);
    let value: unknown = text;
    if (binding.read === 'int') {
      value = /^-?\d+$/.test(text.trim()) ? Number(text) : text;
    } else if (binding.read === 'json') {
      try {
        value = JSON.parse(text);
      } catch {
        problems.push(`${binding.path.join('.')} (from ${binding.env}): not valid JSON`);
        continue;
      }
    }
    setPath(raw, binding.path, value);
  }
  for (const [key, value] of Object.entries(overrides)) setPath(raw, key.split('.'), value);

  if (problems.length > 0) throw new ConfigError(problems);
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(result.error.issues.flatMap((issue) => describeIssue(issue, fromEnv, raw)));
  return { config: result.data, file };
}

function describeIssue(issue: z.core.$ZodIssue, fromEnv: Map<string, string>, raw: unknown): string[] {
  const key = issue.path.map(String).join('.');
  const envName = [...fromEnv.entries()].find(([path]) => key === path || key.startsWith(`${path}.`))?.[1];
  const from = envName ? ` (from ${envName})` : '';
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(configSchema, raw, issue.path);
    return issue.keys.map((unknown) => `${describeUnknownKey(key, unknown, known)}${from}`);
  }
  return [`${key || '(root)'}${from}: ${issue.message}`];
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}
