import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';

/** Environment the primary gives each worker it forks: which worker it is, and of how many. */
export const workerIndexEnv = 'SWITCHBOARD_WORKER';
export const workerCountEnv = 'SWITCHBOARD_WORKERS';

/** How many gateway processes `workers` asks for on this machine. */
export function workerCount(config: Pick<Config, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/**
 * Why this configuration cannot run as several workers, or undefined when it can. The memory broker and
 * memory state live inside one process: workers would each see their own profiles and status, and a
 * client would get a different gateway on every connection.
 */
export function clusterRefusal(config: Pick<Config, 'workers' | 'amqpUrl' | 'redisUrl'>, count: number): string | undefined {
  if (count <= 1) return undefined;
  const missing = [config.amqpUrl ? undefined : 'RabbitMQ (AMQP_URL)', config.redisUrl ? undefined : 'Redis (REDIS_URL)'].filter(Boolean);
  if (missing.length === 0) return undefined;
  return `workers ${config.workers === 'auto' ? `auto (${count})` : count} needs ${missing.join(' and ')}: the in-memory broker and state are per process; set them or run one worker`;
}

/** A worker's fleet node id: the same for every restart of worker n, so its relay queues are resumed. */
export function workerNodeId(base: string, index: number): string {
  return `${base}-w${index}`;
}

/** The worker this process is, when a primary forked it (index from 1, and the count). */
export function currentWorker(env: NodeJS.ProcessEnv = process.env): { index: number; count: number } | undefined {
  const index = Number(env[workerIndexEnv]);
  const count = Number(env[workerCountEnv]);
  return Number.isInteger(index) && index >= 1 && Number.isInteger(count) && count >= index ? { index, count } : undefined;
}
