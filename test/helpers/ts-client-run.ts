import { Worker } from 'node:worker_threads';
import type { TsClientLifecycle, TsClientObservations, TsClientScenario } from './ts-client-worker.js';

/** Plays the ts-client scenario in a worker and returns what the client saw; the worker is always ended. */
export async function runTsClient(scenario: TsClientScenario, timeoutMs = 30_000): Promise<TsClientObservations> {
  return runWorker<TsClientObservations>(scenario, timeoutMs);
}

/** The lifecycle functions (showModule, stopModule, ...) on `scenario.lifecycleModule`. */
export function runTsClientLifecycle(scenario: TsClientScenario, timeoutMs = 30_000): Promise<TsClientLifecycle> {
  return runWorker<TsClientLifecycle>(scenario, timeoutMs);
}

async function runWorker<T>(scenario: TsClientScenario, timeoutMs: number): Promise<T> {
  const worker = new Worker(new URL('./ts-client-worker.js', import.meta.url), { workerData: scenario });
  try {
    const reply = await new Promise<{ ok: boolean; observations?: T; error?: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('ts-client scenario timed out')), timeoutMs);
      worker.once('message', (m) => {
        clearTimeout(timer);
        resolve(m as { ok: boolean; observations?: T; error?: string });
      });
      worker.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    if (!reply.ok) throw new Error(`ts-client scenario failed: ${reply.error}`);
    return reply.observations!;
  } finally {
    await worker.terminate();
  }
}
