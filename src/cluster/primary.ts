import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../core/logger.js';
import { ClusterMetricsCollector, PrimaryMetrics } from './cluster-metrics.js';
import { workerCountEnv, workerIndexEnv, workerNodeId } from './cluster-plan.js';

export interface PrimaryOptions {
  count: number;
  /** Workers are `<baseNodeId>-w1` .. `-w<count>`. */
  baseNodeId: string;
  log: Logger;
  /** After SIGTERM, workers still running this much later are killed (theirs is shutdownTimeoutMs). */
  shutdownTimeoutMs: number;
  restartInitialMs?: number;
  restartMaxMs?: number;
}

/** A worker's exit code when its configuration was refused (main.ts): restarting it would fail again. */
const refusedExitCode = 2;

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  listened: boolean;
  /** Restarts since the worker last stayed up for restartMaxMs; sets the next delay. */
  restarts: number;
  timer?: NodeJS.Timeout;
}

/**
 * The primary of `workers` > 1: forks the workers (node:cluster hands them the accepted connections of the
 * one port, round-robin), serves nothing itself, starts a worker that died again after a backoff, forwards
 * SIGTERM/SIGINT so every worker drains, and exits once all of them have.
 */
export function runPrimary(options: PrimaryOptions): void {
  const { count, baseNodeId, log } = options;
  const restartInitialMs = options.restartInitialMs ?? 500;
  const restartMaxMs = options.restartMaxMs ?? 30_000;
  const metrics = new PrimaryMetrics();
  const slots = Array.from({ length: count }, (_, i): Slot => ({ index: i + 1, startedAt: 0, listened: false, restarts: 0 }));
  const collector = new ClusterMetricsCollector(metrics.registry, () => slots.flatMap((s) => (s.worker ? [s.worker] : [])));
  let stopping = false;
  let announced = false;
  let exitCode = 0;

  const live = () => slots.filter((s) => s.worker !== undefined).length;
  const countWorkers = () => {
    metrics.workersLive.set(live());
    metrics.workersListening.set(slots.filter((s) => s.worker !== undefined && s.listened).length);
  };

  const start = (slot: Slot) => {
    const node = workerNodeId(baseNodeId, slot.index);
    const worker = cluster.fork({ NODE_ID: node, [workerIndexEnv]: String(slot.index), [workerCountEnv]: String(count) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listened = false;
    countWorkers();
    log.info({ worker: slot.index, pid: worker.process.pid, workerNode: node }, 'worker started');
    worker.on('message', (message: unknown) => {
      collector.onMessage(worker, message);
      if ((message as { type?: unknown } | null)?.type !== 'switchboard:listening') return;
      slot.listened = true;
      countWorkers();
      log.info({ worker: slot.index, pid: worker.process.pid, workerNode: node }, 'worker listening');
      if (!announced && slots.every((s) => s.listened)) {
        announced = true;
        log.info({ workers: count, port: (message as { port?: unknown }).port }, 'all workers listening');
      }
    });
    worker.on('exit', (code, signal) => exited(slot, worker, code, signal));
  };

  const exited = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    countWorkers();
    if (stopping) {
      log.info({ worker: slot.index, code, signal }, 'worker stopped');
      if (live() === 0) finish();
      return;
    }
    if (code === refusedExitCode && !slot.listened) {
      // A configuration the worker refuses (its message is on stderr) would be refused again: stop all.
      log.error({ worker: slot.index }, 'a worker refused the configuration; stopping');
      exitCode = refusedExitCode;
      return stopAll('worker refused');
    }
    const upMs = Date.now() - slot.startedAt;
    if (upMs >= restartMaxMs) slot.restarts = 0;
    const delayMs = Math.min(restartMaxMs, restartInitialMs * 2 ** slot.restarts);
    slot.restarts += 1;
    metrics.restarts.inc({ worker: String(slot.index) });
    log.warn({ worker: slot.index, pid: worker.process.pid, code, signal, upMs, delayMs }, 'worker exited; restarting');
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!stopping) start(slot);
    }, delayMs);
  };

  const finish = () => {
    log.info({ code: exitCode }, 'all workers stopped');
    process.exit(exitCode);
  };

  const stopAll = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: live() }, 'shutting down: draining every worker');
    for (const slot of slots) clearTimeout(slot.timer);
    for (const slot of slots) slot.worker?.process.kill('SIGTERM');
    const forced = setTimeout(() => {
      log.error({ workers: live() }, 'workers took too long to stop; killing them');
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      exitCode = 1;
    }, options.shutdownTimeoutMs + 2_000);
    forced.unref();
    if (live() === 0) finish();
  };

  process.on('SIGTERM', () => stopAll('SIGTERM'));
  process.on('SIGINT', () => stopAll('SIGINT'));
  process.on('SIGHUP', () => {
    // TLS reload: each worker holds its own certificate.
    for (const slot of slots) slot.worker?.process.kill('SIGHUP');
  });
  for (const slot of slots) start(slot);
}
