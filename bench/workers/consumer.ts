import * as amqp from 'amqplib';
import type { Join } from '../lib/fleet.js';
import { WebSocket } from 'ws';
import { LatencyRecorder, timestampOf, wallMs } from '../lib/percentiles.js';
import { decodeFrames, encodeFrame } from '../lib/stomp.js';
import { failure, inStep, StepError } from '../lib/worker-failure.js';

/**
 * A load process that receives bench messages and measures latency (receive time minus the publisher's
 * timestamp), through one of three systems: the gateway (one joined WebSocket per join: a profile on one
 * node, or on each of two nodes), RabbitMQ
 * Web-STOMP (STOMP over WebSocket, at most 100 connections, one subscription per queue, client-individual ack,
 * prefetch 100) or a raw
 * amqplib consumer (one connection, one consumer per queue, prefetch 100, ack each message).
 * Driven over IPC by bench/run.ts: start -> ready, measure, stop -> result, then it exits.
 */
export type ConsumerStart =
  | { cmd: 'start'; system: 'gateway'; joins: Join[]; ack: boolean }
  | { cmd: 'start'; system: 'stomp'; url: string; queues: string[]; prefetch: number }
  | { cmd: 'start'; system: 'amqp'; url: string; queues: string[]; prefetch: number };

const latency = new LatencyRecorder();
/** Gateway sockets that have received at least one message (two-node runs wait for all: relays set up). */
let liveSockets = 0;
const cleanups: Array<() => Promise<void> | void> = [];

function onBody(text: string): void {
  if (latency.arrive()) latency.sample(wallMs() - timestampOf(text));
}

/**
 * An ack-mode socket acknowledges once per event-loop turn, the highest seq it received (as the SDK does
 * after its handlers ran): frames start `{"seq":<n>,`.
 */
function ackingReader(ws: WebSocket): (frame: string) => void {
  let due: number | undefined;
  return (frame) => {
    onBody(frame);
    const first = due === undefined;
    due = Number(frame.slice(7, frame.indexOf(',')));
    if (!first) return;
    setImmediate(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(`{"action":"ack","seq":${due}}`);
      due = undefined;
    });
  };
}

async function startGateway(joins: Join[], ack: boolean): Promise<void> {
  let next = 0;
  const openOne = async () => {
    while (next < joins.length) {
      const { url, token } = joins[next++]!;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      await inStep('gateway join', () => new Promise<void>((resolve, reject) => {
        ws.once('open', () => ws.send(JSON.stringify({ action: 'joinChannel', data: { authorizationToken: token, ...(ack && { ack: true }) } })));
        ws.once('error', reject);
        ws.once('message', (data) => {
          const reply = JSON.parse(String(data)) as { status: number };
          if (reply.status !== 200) return reject(new Error(`join refused: ${String(data)}`));
          const read = ack ? ackingReader(ws) : onBody;
          let first = true;
          ws.on('message', (frame) => {
            if (first) (first = false), (liveSockets += 1);
            read(String(frame));
          });
          resolve();
        });
      }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(50, joins.length) }, openOne));
}

/**
 * Web-STOMP: at most `maxStompConnections` connections, queues spread over them, one subscription per queue.
 * (RabbitMQ here allows 832 sockets in all and is shared: one connection per queue would exhaust it.)
 */
const maxStompConnections = 100;

async function startStomp(url: string, queues: string[], prefetch: number): Promise<void> {
  const connections = Math.min(maxStompConnections, queues.length);
  await Promise.all(
    Array.from({ length: connections }, (_, c) => {
      const mine = queues.filter((_q, i) => i % connections === c);
      const ws = new WebSocket(url, ['v12.stomp'], { perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      return inStep('stomp connect/subscribe', () => new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('open', () =>
          ws.send(encodeFrame('CONNECT', { 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest', 'heart-beat': '0,0' })),
        );
        ws.on('message', (data) => {
          for (const frame of decodeFrames(String(data))) {
            if (frame.command === 'MESSAGE') {
              onBody(frame.body);
              ws.send(encodeFrame('ACK', { id: frame.headers.ack! }));
            } else if (frame.command === 'CONNECTED') {
              // A receipt on the last subscription says they are all live (frames are handled in order).
              mine.forEach((queue, i) =>
                ws.send(
                  encodeFrame('SUBSCRIBE', {
                    id: `s${i}`,
                    destination: `/amq/queue/${queue}`,
                    ack: 'client-individual',
                    'prefetch-count': String(prefetch),
                    ...(i === mine.length - 1 && { receipt: 'subscribed' }),
                  }),
                ),
              );
            } else if (frame.command === 'RECEIPT') {
              resolve();
            } else if (frame.command === 'ERROR') {
              reject(new Error(`STOMP error: ${frame.headers.message ?? ''} ${frame.body}`));
            }
          }
        });
      }));
    }),
  );
}

async function startAmqp(url: string, queues: string[], prefetch: number): Promise<void> {
  const connection = await inStep('amqp.connect', () => amqp.connect(url, { noDelay: true, clientProperties: { connection_name: 'switchboard-bench-raw-consumer' } }));
  cleanups.push(() => connection.close().catch(() => {}));
  connection.on('error', (err: Error) => report(new StepError('consuming (connection error)', err)));
  const channel = await inStep('createChannel', () => connection.createChannel());
  channel.on('error', (err: Error) => report(new StepError('consuming (channel error)', err)));
  await inStep('prefetch', () => channel.prefetch(prefetch));
  for (const queue of queues) {
    await inStep(`consume ${queue}`, () =>
      channel.consume(queue, (msg) => {
        if (!msg) return;
        onBody(msg.content.toString('utf8'));
        channel.ack(msg);
      }),
    );
  }
}

function report(err: unknown, step?: string): void {
  process.send!(failure('consumer', err, step));
}

process.on('message', (raw: unknown) => {
  const msg = raw as { cmd: string } & Partial<ConsumerStart>;
  void (async () => {
    try {
      if (msg.cmd === 'start') {
        const start = msg as ConsumerStart;
        if (start.system === 'gateway') await startGateway(start.joins, start.ack);
        else if (start.system === 'stomp') await startStomp(start.url, start.queues, start.prefetch);
        else await startAmqp(start.url, start.queues, start.prefetch);
        process.send!({ type: 'ready' });
        const progress = setInterval(() => process.send!({ type: 'progress', received: latency.received, liveSockets }), 20);
        cleanups.push(() => clearInterval(progress));
      } else if (msg.cmd === 'measure') {
        latency.begin();
      } else if (msg.cmd === 'stop') {
        process.send!({ type: 'result', ...latency.end() });
      } else if (msg.cmd === 'close') {
        for (const cleanup of cleanups.reverse()) await cleanup();
        process.exit(0);
      }
    } catch (err) {
      report(err, msg.cmd);
    }
  })();
});
process.on('disconnect', () => process.exit(0));
