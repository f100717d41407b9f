import { execFile } from 'node:child_process';

/**
 * RabbitMQ's open-file limit, as `rabbitmqctl status --formatter json` reports it. Persistent rows depend on
 * it: at 1,024 the broker's file handle cache thrashed with 3,000 durable queues and the two-node persistent
 * row ran at a fourteenth of its rate (docs/performance.md, "Persistent rows"), so the bench prints it.
 */
export const lowBrokerOpenFiles = 10_000;

/** The `file_descriptors.total_limit` of a `rabbitmqctl status --formatter json` output, if there is one. */
export function brokerOpenFilesFrom(statusJson: string): number | undefined {
  try {
    const limit = (JSON.parse(statusJson) as { file_descriptors?: { total_limit?: unknown } }).file_descriptors?.total_limit;
    return typeof limit === 'number' && Number.isFinite(limit) ? limit : undefined;
  } catch {
    return undefined;
  }
}

/** The local broker's open-file limit; undefined when `rabbitmqctl` is missing, refused or slow (a remote broker). */
export function readBrokerOpenFiles(): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('rabbitmqctl', ['status', '--formatter', 'json'], { timeout: 30_000 }, (err, stdout) => resolve(err ? undefined : brokerOpenFilesFrom(stdout)));
  });
}
