import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';

/**
 * RabbitMQ's pace on this host, measured before the rows: one connection publishes transient messages of
 * 200 bytes to one server-named queue and consumes them without acks, at most `window` in flight. The
 * hosts the bench runs on differ between sessions by about two times in what RabbitMQ manages (the same
 * probe measured 30k and 17.7k deliveries/s a day apart, docs/performance.md), and every row moves with it:
 * rows are compared within a run, runs by this figure. Messages per second over `seconds`, after a
 * warm-up of half a second. The queue is exclusive, so it goes with the connection.
 */
export async function calibrateBroker(url: string, seconds = 3, window = 5_000): Promise<number> {
  const connection = await amqp.connect(url, { noDelay: true, clientProperties: { connection_name: 'switchboard-bench-calibration' } });
  try {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    let consumed = 0;
    let published = 0;
    const body = Buffer.alloc(200, 'c');
    let pumping: (() => void) | undefined;
    await channel.consume(
      queue,
      () => {
        consumed += 1;
        if (published - consumed < window / 2) pumping?.();
      },
      { noAck: true },
    );
    let stopped = false;
    const pump = () => {
      pumping = undefined;
      while (!stopped && published - consumed < window) {
        published += 1;
        if (!channel.sendToQueue(queue, body)) {
          channel.once('drain', pump);
          return;
        }
      }
      if (!stopped) pumping = pump;
    };
    pump();
    await sleep(500);
    const from = consumed;
    const startedAt = performance.now();
    await sleep(seconds * 1_000);
    const perSecond = (consumed - from) / ((performance.now() - startedAt) / 1_000);
    stopped = true;
    return Math.round(perSecond);
  } finally {
    await connection.close().catch(() => {});
  }
}
