import * as amqp from 'amqplib';
import type { Channel, ConfirmChannel } from 'amqplib';
import { wallMs } from '../lib/percentiles.js';
import { failure, inStep, StepError } from '../lib/worker-failure.js';

/**
 * A plain amqplib publisher (no project code) into `message_to_user.<id>` on the default exchange, round
 * robin over the queues. Each body carries the publish time (`ts`, wall-clock ms) for latency.
 * - transient: persistent=false on a plain channel, paced by the channel's write buffer ('drain');
 * - persistent: persistent=true on a confirm channel, at most `maxUnconfirmed` awaiting their confirm.
 * Rate: `max` is a closed loop (at most `window` messages published and not yet received, counted by the
 * consumers and relayed by run.ts as `delivered`); a number is a fixed rate in messages per second.
 */
export interface PublisherStart {
  cmd: 'start';
  url: string;
  queues: string[];
  persistent: boolean;
  rate: 'max' | number;
  window: number;
}

const maxUnconfirmed = 1_000;
let delivered = 0;
let running = false;
/**
 * Resolves the wait of a closed loop whose window (or confirm window) is full. Polling with setImmediate
 * instead spun at up to a core's worth of CPU while the window was full, taken from RabbitMQ and the
 * gateway on a two-core machine, and most in the rows where delivery is slowest (the two-node relay).
 */
let wake: (() => void) | undefined;
function nudge(): void {
  const waiting = wake;
  wake = undefined;
  waiting?.();
}

async function run(start: PublisherStart): Promise<void> {
  const connection = await inStep('amqp.connect', () => amqp.connect(start.url, { noDelay: true, clientProperties: { connection_name: 'switchboard-bench-publisher' } }));
  // A connection lost mid-run would otherwise end the process with an unhandled 'error' and no word of why.
  connection.on('error', (err: Error) => fail(new StepError('publishing (connection error)', err)));
  const channel: Channel | ConfirmChannel = await inStep(start.persistent ? 'createConfirmChannel' : 'createChannel', () =>
    start.persistent ? connection.createConfirmChannel() : connection.createChannel(),
  );
  channel.on('error', (err: Error) => fail(new StepError('publishing (channel error)', err)));
  let published = 0;
  let unconfirmed = 0;
  let blocked: Promise<void> | undefined;
  const startedAt = performance.now();

  const publishOne = () => {
    const queue = start.queues[published % start.queues.length]!;
    const body = Buffer.from(`{"data":{"type":"X-BENCH","id":"${published}","ts":${wallMs().toFixed(3)}}}`);
    published += 1;
    if (start.persistent) {
      unconfirmed += 1;
      (channel as ConfirmChannel).publish('', queue, body, { persistent: true }, () => {
        unconfirmed -= 1;
        nudge();
      });
      return true;
    }
    return channel.publish('', queue, body, { persistent: false });
  };
  const allowed = () => {
    if (start.persistent && unconfirmed >= maxUnconfirmed) return false;
    if (start.rate === 'max') return published - delivered < start.window;
    return published < ((performance.now() - startedAt) / 1000) * start.rate;
  };

  process.send!({ type: 'ready' });
  while (running) {
    if (blocked) await blocked;
    let burst = 0;
    while (running && allowed() && burst < 500) {
      burst += 1;
      if (!publishOne()) {
        blocked = new Promise((resolve) => channel.once('drain', () => resolve()));
        break;
      }
    }
    if (start.rate === 'max' && running && !blocked && !allowed()) {
      // The window is full: wait for the consumers' count (or a confirm), not for the next turn.
      await new Promise<void>((resolve) => (wake = resolve));
    } else {
      // Yield to I/O (confirms, credit updates); a fixed rate ticks every millisecond.
      await new Promise((resolve) => (start.rate === 'max' ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
    if (blocked) {
      await blocked;
      blocked = undefined;
    }
  }
  if (start.persistent) await (channel as ConfirmChannel).waitForConfirms().catch(() => {});
  process.send!({ type: 'result', published });
  await connection.close().catch(() => {});
}

function fail(err: unknown): void {
  running = false;
  process.send!(failure('publisher', err, 'publishing'), () => process.exit(1));
}

process.on('message', (raw: unknown) => {
  const msg = raw as { cmd: string; delivered?: number };
  if (msg.cmd === 'start') {
    running = true;
    run(msg as PublisherStart).then(() => process.exit(0), fail);
  } else if (msg.cmd === 'delivered') {
    delivered = msg.delivered ?? delivered;
    nudge();
  } else if (msg.cmd === 'stop') {
    running = false;
    nudge();
  }
});
process.on('disconnect', () => process.exit(0));
