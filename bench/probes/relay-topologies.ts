/**
 * What RabbitMQ alone pays for a profile held on two nodes, per relay topology, with raw amqplib and no
 * gateway (docs/performance.md, "Two nodes: the broker's cost per relay topology"). Every process is a
 * plain AMQP client, so the figures are the broker's ceiling for each topology on this machine:
 *
 * - `direct`: one node holds each profile and consumes its mailbox (the one-node rows).
 * - `self`: the relay as built: the active node publishes one confirmed copy to the relay exchange, routed
 *   to both nodes' relay queues (its own included), acks the mailbox message on the confirm; each node
 *   consumes its relay queue.
 * - `cc`: the lever issue 16 names first: the active node counts its own delivery straight from the
 *   mailbox and publishes the confirmed copy only to the other node's relay queue (default exchange).
 * - `ccnode`: as `cc`, but the other node has one relay queue for all profiles instead of one per profile
 *   (what RabbitMQ would save if the relay queues were per node; the gateway's are per (node, profile)).
 *
 * 1,000 mailboxes, transient messages of about 200 bytes from a confirming publisher at most 5,000 ahead,
 * prefetch 100 per consumer (not reached: about 5 in flight per queue), acks gathered for 5 ms into one `multiple` ack as the gateway does; no batch
 * copies and no sockets.
 *
 * With `--rate n` the publisher sends n messages a second instead of staying 5,000 ahead, and the nodes
 * report latency from publish to delivery (the active node's own delivery in `cc` counts at its receipt
 * from the mailbox, where the gateway would write to its sockets).
 *
 * With `--gateway-queues` the queues are declared with the gateway's arguments (topology.ts, the config's
 * defaults): mailboxes with single active consumer, max length, message TTL, expiry and dead-lettering;
 * relay queues with expiry, message TTL and dead-lettering back to the mailbox. Without it, plain durable
 * queues.
 *
 * With `--lanes n` each node consumes on n channels (queue i on channel i % n), each with its own gathered
 * acks, as the gateway's 8 mailbox and 8 relay queue lanes (src/backends/rabbitmq/amqp-link.ts).
 *
 * With `--gateway-copies` copies are published as the gateway publishes them: mandatory, with the relay's
 * headers.
 *
 * With `--persistent` messages are published persistent (delivery mode 2) and copies keep that mode.
 *
 * `npm run build && node dist/bench/probes/relay-topologies.js [direct|self|cc|ccnode ...] [--seconds n]
 *  [--rate n] [--gateway-queues] [--gateway-copies] [--lanes n] [--persistent]`
 * (default: all three, 10 s each, at the broker's pace; AMQP_URL as the bench).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as amqp from 'amqplib';
import { SampleBuffer, summarize, wallMs } from '../lib/percentiles.js';
import { cpuPercent, findBrokerPid, sampleProc, trySampleProc } from '../lib/proc-stats.js';
import { nodeHeader, relayHeader, sharedHeader } from '../../src/backends/rabbitmq/relay-protocol.js';
import { mailboxQueueArguments, relayCopyTtlMs, relayQueueArguments } from '../../src/backends/rabbitmq/topology.js';

type Topology = 'direct' | 'self' | 'cc' | 'ccnode';
type Role = 'publisher' | 'active' | 'holder';
const topologies: readonly Topology[] = ['direct', 'self', 'cc', 'ccnode'];

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const profiles = 1_000;
const publishWindow = 5_000;
const prefetch = 100;
const ackDelayMs = 5;
/** The configuration's defaults (src/config/schema.ts): retention, notify.nodeQueueExpiresMs, the dead-letter queue. */
const gatewayRetention = { maxLength: 10_000, messageTtlMs: 7 * 24 * 3600_000, queueExpiresMs: 30 * 24 * 3600_000 };
const gatewayNodeQueueExpiresMs = 300_000;
const gatewayDeadLetterQueue = 'switchboard.dead_letter';

interface Names {
  mailbox(i: number): string;
  relay(node: 'a' | 'b', i: number): string;
  /** `ccnode`: the other node's one relay queue. */
  nodeRelay: string;
  exchange: string;
}

function namesOf(run: string): Names {
  return {
    mailbox: (i) => `probe.${run}.mailbox.${i}`,
    relay: (node, i) => `probe.${run}.relay.${node}.${i}`,
    nodeRelay: `probe.${run}.relay.b`,
    exchange: `probe.${run}.relay`,
  };
}

function connect(): Promise<amqp.ChannelModel> {
  return amqp.connect(url, { noDelay: true });
}

/** Acks in tag order, one `multiple` ack per 5 ms for the longest settled run (as src/backends/rabbitmq/ack-batcher.ts). */
function gatheringAcker(channel: amqp.Channel): (tag: number) => void {
  const settled = new Set<number>();
  let next = 1;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    let upTo: number | undefined;
    while (settled.delete(next)) upTo = next++;
    if (upTo === undefined) return;
    try {
      channel.ack({ fields: { deliveryTag: upTo } } as amqp.Message, true);
    } catch {
      // closing at the end of the measurement: RabbitMQ requeues what was not acknowledged
    }
  };
  return (tag) => {
    settled.add(tag);
    timer ??= setTimeout(flush, ackDelayMs);
  };
}

/** A node's deliveries, and their latencies (the publish time is the body's first 8 bytes) once measuring. */
class Deliveries {
  count = 0;
  readonly latencies = new SampleBuffer();
  measuring = false;

  record(content: Buffer): void {
    this.count += 1;
    if (this.measuring) this.latencies.push(wallMs() - content.readDoubleLE(0));
  }
}

/**
 * A role process: reports 'ready'; a node also answers 'count', 'measure' (start keeping latencies) and
 * 'latencies'; exits on 'stop'.
 */
function serve(connection: amqp.ChannelModel, deliveries?: Deliveries): void {
  connection.on('error', () => {}); // the coordinator closes everything at the end; late acks may fail
  process.send!('ready');
  process.on('message', (message) => {
    if (deliveries && message === 'count') process.send!({ delivered: deliveries.count });
    if (deliveries && message === 'measure') deliveries.measuring = true;
    if (deliveries && message === 'latencies') process.send!({ latencies: Array.from(deliveries.latencies.values()) });
    if (message === 'stop') void connection.close().catch(() => {}).finally(() => process.exit(0));
  });
}

async function publisher(names: Names, rate: number | undefined, persistent: boolean): Promise<void> {
  const connection = await connect();
  const channel = await connection.createConfirmChannel();
  const padding = Buffer.alloc(192, 'p');
  let inFlight = 0;
  let next = 0;
  let stopped = false;
  const publishOne = () => {
    const body = Buffer.allocUnsafe(8 + padding.length);
    padding.copy(body, 8);
    body.writeDoubleLE(wallMs(), 0);
    inFlight += 1;
    channel.sendToQueue(names.mailbox(next++ % profiles), body, { persistent }, () => {
      inFlight -= 1;
      if (rate === undefined && inFlight === publishWindow / 2) setImmediate(pump);
    });
  };
  const pump = () => {
    while (!stopped && inFlight < publishWindow) publishOne();
  };
  serve(connection);
  process.on('message', (message) => {
    if (message === 'stop') stopped = true;
  });
  if (rate === undefined) {
    pump();
    return;
  }
  // A tick every 10 ms publishes what the rate owes by then, so a late tick catches up.
  const startedAt = performance.now();
  const tick = setInterval(() => {
    if (stopped) return clearInterval(tick);
    const owed = Math.floor(((performance.now() - startedAt) / 1_000) * rate) - next;
    for (let i = 0; i < owed && inFlight < publishWindow; i++) publishOne();
  }, 10);
}

/** `count` consuming channels, each with its prefetch and its own gathered acks (queue i consumed on lane i % count). */
async function consumerLanes(connection: amqp.ChannelModel, count: number): Promise<Array<{ channel: amqp.Channel; ack: (tag: number) => void }>> {
  const lanes = [];
  for (let i = 0; i < count; i++) {
    const channel = await connection.createChannel();
    await channel.prefetch(prefetch);
    lanes.push({ channel, ack: gatheringAcker(channel) });
  }
  return lanes;
}

async function activeNode(names: Names, topology: Topology, laneCount: number, gatewayCopies: boolean): Promise<void> {
  // As profile-subscription.ts publishes a copy: mandatory, with the relay's headers (relay-protocol.ts).
  const copyOptions = (tag: number, original: amqp.Message): amqp.Options.Publish => ({
    persistent: original.properties.deliveryMode === 2,
    ...(gatewayCopies && { mandatory: true, headers: { [relayHeader]: `${names.exchange}-${tag}`, [nodeHeader]: `${names.exchange}-node-a`, [sharedHeader]: true } }),
  });
  const connection = await connect();
  const mailboxLanes = await consumerLanes(connection, laneCount);
  const relayLanes = await consumerLanes(connection, laneCount);
  const copies = await connection.createConfirmChannel();
  const delivered = new Deliveries();
  for (let i = 0; i < profiles; i++) {
    const mailbox = names.mailbox(i);
    const ownRelay = relayLanes[i % laneCount]!;
    if (topology === 'self') {
      await ownRelay.channel.consume(names.relay('a', i), (msg) => {
        delivered.record(msg!.content);
        ownRelay.ack(msg!.fields.deliveryTag);
      });
    }
    const { channel: mailboxes, ack: ackMailbox } = mailboxLanes[i % laneCount]!;
    await mailboxes.consume(mailbox, (msg) => {
      const tag = msg!.fields.deliveryTag;
      if (topology === 'direct') {
        delivered.record(msg!.content);
        ackMailbox(tag);
      } else if (topology === 'self') {
        copies.publish(names.exchange, mailbox, msg!.content, copyOptions(tag, msg!), () => ackMailbox(tag));
      } else {
        delivered.record(msg!.content); // written to its own sockets straight from the mailbox
        const to = topology === 'ccnode' ? names.nodeRelay : names.relay('b', i);
        copies.sendToQueue(to, msg!.content, copyOptions(tag, msg!), () => ackMailbox(tag));
      }
    });
  }
  serve(connection, delivered);
}

async function holderNode(names: Names, topology: Topology, laneCount: number): Promise<void> {
  const connection = await connect();
  const lanes = await consumerLanes(connection, laneCount);
  const delivered = new Deliveries();
  const queues = topology === 'ccnode' ? [names.nodeRelay] : Array.from({ length: profiles }, (_, i) => names.relay('b', i));
  for (const [i, queue] of queues.entries()) {
    const { channel, ack } = lanes[i % laneCount]!;
    await channel.consume(queue, (msg) => {
      delivered.record(msg!.content);
      ack(msg!.fields.deliveryTag);
    });
  }
  serve(connection, delivered);
}

/** Asks a role process one question and waits for the answer that carries `key`. */
function ask<T>(child: ReturnType<typeof fork>, question: string, key: string): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (typeof message !== 'object' || message === null || !(key in message)) return;
      child.off('message', onMessage);
      resolve((message as Record<string, T>)[key]!);
    };
    child.on('message', onMessage);
    child.send(question);
  });
}

interface ProbeOptions {
  seconds: number;
  rate: number | undefined;
  gatewayQueues: boolean;
  gatewayCopies: boolean;
  lanes: number;
  persistent: boolean;
}

async function measure(topology: Topology, { seconds, rate, gatewayQueues, gatewayCopies, lanes, persistent }: ProbeOptions): Promise<string> {
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const names = namesOf(run);
  const connection = await connect();
  const channel = await connection.createChannel();
  await channel.assertExchange(names.exchange, 'direct', { durable: false });
  const relays = topology === 'direct' || topology === 'ccnode' ? [] : topology === 'self' ? (['a', 'b'] as const) : (['b'] as const);
  if (topology === 'ccnode') {
    const nodeQueueArguments = { 'x-expires': gatewayNodeQueueExpiresMs, 'x-message-ttl': relayCopyTtlMs(gatewayNodeQueueExpiresMs) };
    await channel.assertQueue(names.nodeRelay, { durable: true, ...(gatewayQueues && { arguments: nodeQueueArguments }) });
  }
  for (let i = 0; i < profiles; i++) {
    const mailbox = names.mailbox(i);
    await channel.assertQueue(mailbox, { durable: true, ...(gatewayQueues && { arguments: mailboxQueueArguments(gatewayRetention, gatewayDeadLetterQueue) }) });
    for (const node of relays) {
      await channel.assertQueue(names.relay(node, i), { durable: true, ...(gatewayQueues && { arguments: relayQueueArguments(gatewayNodeQueueExpiresMs, mailbox) }) });
      if (topology === 'self') await channel.bindQueue(names.relay(node, i), names.exchange, names.mailbox(i));
    }
  }
  const self = fileURLToPath(import.meta.url);
  const start = (role: Role) =>
    new Promise<ReturnType<typeof fork>>((resolve, reject) => {
      const child = fork(self, ['--role', role, '--topology', topology, '--run', run, '--lanes', String(lanes), ...(rate ? ['--rate', String(rate)] : []), ...(gatewayCopies ? ['--gateway-copies'] : []), ...(persistent ? ['--persistent'] : [])]);
      child.once('message', () => resolve(child));
      child.once('exit', (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
    });
  const nodes = [await start('active'), ...(topology === 'direct' ? [] : [await start('holder')])];
  const publishing = await start('publisher');
  const children = [publishing, ...nodes];
  const deliveries = async () => (await Promise.all(nodes.map((node) => ask<number>(node, 'count', 'delivered')))).reduce((a, b) => a + b, 0);
  try {
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // warm-up
    const brokerPid = findBrokerPid();
    for (const node of nodes) node.send('measure');
    const startedAt = performance.now();
    const before = { delivered: await deliveries(), broker: trySampleProc(brokerPid), clients: children.map((c) => sampleProc(c.pid!)) };
    await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
    const delivered = (await deliveries()) - before.delivered;
    const elapsed = (performance.now() - startedAt) / 1_000;
    const clientCpu = children.map((c, k) => Math.round(cpuPercent(before.clients[k]!, sampleProc(c.pid!))));
    const brokerAfter = trySampleProc(brokerPid);
    const brokerCpu = before.broker && brokerAfter ? ` RabbitMQ ${Math.round(cpuPercent(before.broker, brokerAfter))} %,` : '';
    const latencies = (await Promise.all(nodes.map((node) => ask<number[]>(node, 'latencies', 'latencies')))).flat();
    const { p50, p99 } = summarize(Float64Array.from(latencies));
    const latency = rate ? `, latency p50 ${p50.toFixed(2)} ms p99 ${p99.toFixed(2)} ms` : '';
    return `${topology}${persistent ? ' (persistent)' : ''}: ${Math.round(delivered / elapsed)} deliveries/s${latency},${brokerCpu} publisher / nodes ${clientCpu.join(' / ')} % of a core`;
  } finally {
    for (const child of children) child.send('stop');
    await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    for (let i = 0; i < profiles; i++) {
      await channel.deleteQueue(names.mailbox(i));
      for (const node of relays) await channel.deleteQueue(names.relay(node, i));
    }
    if (topology === 'ccnode') await channel.deleteQueue(names.nodeRelay);
    await channel.deleteExchange(names.exchange);
    await connection.close();
  }
}

const usage = `usage: relay-topologies.js [${topologies.join('|')} ...] [--seconds 1..600] [--rate 1..100000] [--gateway-queues] [--gateway-copies] [--lanes 1..64] [--persistent]\n`;
const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        role: { type: 'string' },
        topology: { type: 'string' },
        run: { type: 'string' },
        seconds: { type: 'string', default: '10' },
        rate: { type: 'string' },
        'gateway-queues': { type: 'boolean', default: false },
        lanes: { type: 'string', default: '1' },
        'gateway-copies': { type: 'boolean', default: false },
        persistent: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${usage}${(err as Error).message}\n`);
    process.exit(2);
  }
})();

if (values.role) {
  const names = namesOf(values.run!);
  const topology = values.topology as Topology;
  if (values.role === 'publisher') await publisher(names, values.rate ? Number(values.rate) : undefined, values.persistent);
  else if (values.role === 'active') await activeNode(names, topology, Number(values.lanes), values['gateway-copies']);
  else await holderNode(names, topology, Number(values.lanes));
} else {
  const picked = (positionals.length > 0 ? positionals : topologies) as Topology[];
  const seconds = Number(values.seconds);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  const unknown = picked.filter((t) => !topologies.includes(t));
  const lanes = Number(values.lanes);
  const badRate = rate !== undefined && (!Number.isInteger(rate) || rate < 1 || rate > 100_000);
  const badLanes = !Number.isInteger(lanes) || lanes < 1 || lanes > 64;
  if (unknown.length > 0 || !Number.isInteger(seconds) || seconds < 1 || seconds > 600 || badRate || badLanes) {
    process.stderr.write(usage);
    process.exit(2);
  }
  for (const topology of picked) process.stdout.write(`${await measure(topology, { seconds, rate, gatewayQueues: values['gateway-queues'], gatewayCopies: values['gateway-copies'], lanes, persistent: values.persistent })}\n`);
}
