import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { calibrateBroker } from '../lib/broker-calibration.js';

const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

describe('bench broker calibration', () => {
  it("measures the local RabbitMQ's pace through one queue", async () => {
    const perSecond = await calibrateBroker(amqpUrl, 0.5, 1_000);
    // Loopback RabbitMQ moves thousands a second on the slowest host seen here (docs/performance.md).
    assert.ok(perSecond > 500, `${perSecond} messages/s`);
  });

  it('fails instead of waiting when nothing answers at the address', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(calibrateBroker(`amqp://guest:guest@127.0.0.1:${port}`, 0.5));
  });
});
