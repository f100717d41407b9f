import { type ChildProcess, fork, type Serializable, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeFailure, type WorkerFailure } from './worker-failure.js';

/** Every process the bench started, so it can stop them all on the way out (even after a failure). */
const started = new Set<ChildProcess>();
/** The worker name of each forked load process, for error messages. */
const workerNames = new WeakMap<ChildProcess, string>();

/** A load process (bench/workers/<name>.js) driven over IPC; `advanced` serialization carries typed arrays. */
export function forkWorker(name: string, extraArgs: string[] = []): ChildProcess {
  const child = fork(fileURLToPath(new URL(`../workers/${name}.js`, import.meta.url)), extraArgs, {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  track(child);
  workerNames.set(child, name);
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

/**
 * Sends to a worker that may be exiting (a relay of progress counts): a send racing its exit fails with
 * EPIPE, which then goes to the callback instead of becoming an 'error' event; the exit is what counts.
 */
export function sendIfRunning(child: ChildProcess, message: Serializable): void {
  if (child.connected) child.send(message, ignoreSendError);
}
const ignoreSendError = () => {};

/** Waits for the next IPC message of `type` (an `error` message rejects), bounded by `timeoutMs`. */
export function nextMessage<T = Record<string, unknown>>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const name = workerNames.get(child) ?? 'worker';
    const timer = setTimeout(() => finish(new Error(`no "${type}" from ${name} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (raw: unknown) => {
      const msg = raw as { type: string } & Partial<WorkerFailure>;
      if (msg.type === type) finish(undefined, msg as T);
      else if (msg.type === 'error') finish(new Error(describeFailure({ worker: name, ...msg })));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => finish(new Error(`${name} exited (${code ?? signal}) before "${type}"`));
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

/**
 * Ends one process: SIGTERM, then SIGKILL after `graceMs`. Waits for 'exit' with a plain listener, not
 * events.once: that one rejects on the child's 'error' event, and an IPC send racing the exit (EPIPE) emits
 * one, which turned a complete measurement into a failed row.
 */
export async function stop(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every process still running (used on the way out). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((child) => stop(child, 3_000)));
}
