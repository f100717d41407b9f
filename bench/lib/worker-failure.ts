/**
 * How a load process reports a failure to bench/run.ts: which worker, at which step, the error's code and
 * the wall-clock time (to find the moment in RabbitMQ's log). A bare "write EPIPE" says none of that.
 */
export interface WorkerFailure {
  type: 'error';
  worker: string;
  step: string;
  code?: string;
  message: string;
  at: string;
}

/** An error that remembers the step it happened in. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Runs one step of a worker; its failure is rethrown naming the step. */
export async function inStep<T>(step: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw err instanceof StepError ? err : new StepError(step, err);
  }
}

export function failure(worker: string, err: unknown, fallbackStep = 'unknown'): WorkerFailure {
  const step = err instanceof StepError ? err.step : fallbackStep;
  const cause = err instanceof StepError ? err.cause : err;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return {
    type: 'error',
    worker,
    step,
    ...(code !== undefined && { code: String(code) }),
    message: cause instanceof Error ? cause.message : String(cause),
    at: new Date().toISOString(),
  };
}

export function describeFailure(f: Partial<WorkerFailure>): string {
  return `${f.worker ?? 'worker'} failed at ${f.step ?? 'unknown step'}: ${f.message ?? ''}${f.code ? ` (${f.code})` : ''}${f.at ? ` at ${f.at}` : ''}`;
}
