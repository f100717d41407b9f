import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Every process the bench started, so it can stop them all on the way out (even after a failure). */
const started = new Set<ChildProcess>();

/** A load process (bench/workers/<name>.js) driven over IPC; `advanced` serialization carries typed arrays. */
export function forkWorker(name: string, extraArgs: string[] = []): ChildProcess {
  const child = fork(fileURLToPath(new URL(`../workers/${name}.js`, import.meta.url)), extraArgs, {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  // A send racing the worker's exit fails with EPIPE: the exit itself is what the bench reacts to.
  child.on('error', () => {});
  return child;
}

export function spawnProcess(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  return child;
}

// Last resort when the bench itself dies (an exception, the overall time limit): nothing it started survives it.
process.on('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

function track(child: ChildProcess): void {
  started.add(child);
  child.once('exit', () => started.delete(child));
}

/** Waits for the next IPC message of `type` (an `error` message rejects), bounded by `timeoutMs`. */
export function nextMessage<T = Record<string, unknown>>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no "${type}" from worker within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (raw: unknown) => {
      const msg = raw as { type: string; message?: string };
      if (msg.type === type) finish(undefined, msg as T);
      else if (msg.type === 'error') finish(new Error(`worker failed: ${msg.message}`));
    };
    const onExit = (code: number | null) => finish(new Error(`worker exited (${code}) before "${type}"`));
    const finish = (err?: Error, value?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value!);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Ends one process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every process still running (used on the way out). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((child) => stop(child, 3_000)));
}
