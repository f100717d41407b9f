import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';

export const amqpUrl = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const run = promisify(execFile);

/** Test queues expire a minute after their last use, so runs leave nothing behind on the shared broker. */
export const testRetention = { maxLength: 10_000, messageTtlMs: 600_000, queueExpiresMs: 60_000 };

/**
 * A plain amqplib connection, as a backend that knows nothing of this project would have. `noDelay` turns
 * Nagle off: a test that waits for each small batch's confirms otherwise waits ~40 ms per batch.
 */
export async function plainAmqp(options: { noDelay?: boolean } = {}): Promise<{ channel: amqp.ConfirmChannel; close(): Promise<void> }> {
  const connection = await amqp.connect(amqpUrl, options);
  const channel = await connection.createConfirmChannel();
  return { channel, close: () => connection.close() };
}

/**
 * Closes the broker connections whose client-provided name contains `nameFragment`, the way an operator
 * would (`rabbitmqctl close_connection`). Returns how many were closed.
 */
export async function closeConnections(nameFragment: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', ['-q', 'list_connections', 'pid', 'client_properties', '--no-table-headers']);
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(nameFragment))
    .map((line) => line.split(/\s+/)[0]!)
    .filter(Boolean);
  for (const pid of pids) await run('rabbitmqctl', ['-q', 'close_connection', pid, 'test: cut the gateway connection']);
  return pids.length;
}

/** Messages currently in a queue (ready), by a passive declare. */
export async function queueDepth(channel: amqp.Channel, queue: string): Promise<number> {
  return (await channel.checkQueue(queue)).messageCount;
}
