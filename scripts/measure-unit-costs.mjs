#!/usr/bin/env node
// Measures the broker-side unit costs docs/scaling.md needs and docs/performance.md does not have: RabbitMQ
// memory and CPU per mailbox queue and per consumer, Redis memory per watched status channel and per status
// variable. Everything it creates is under a unique prefix and deleted at the end (queues also expire by
// themselves after 10 minutes). It loads the broker: run it alone, under the shared lock:
//   flock /tmp/heavy.lock node scripts/measure-unit-costs.mjs [--queues 3000] [--channels 20000] [--idle-seconds 20]
// Needs RabbitMQ (AMQP_URL, rabbitmqctl and rabbitmq-diagnostics on this machine) and Redis (REDIS_URL).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { Redis } from 'ioredis';

const { values: args } = parseArgs({
  options: { queues: { type: 'string', default: '3000' }, channels: { type: 'string', default: '20000' }, 'idle-seconds': { type: 'string', default: '20' } },
});
const queues = Number(args.queues);
const redisChannels = Number(args.channels);
const idleSeconds = Number(args['idle-seconds']);
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `capmodel-${process.pid}-${Date.now().toString(36)}`;
// The gateway's mailbox arguments (src/backends/rabbitmq/topology.ts), with a short expiry as a safety net.
const mailboxArgs = { 'x-single-active-consumer': true, 'x-max-length': 10_000, 'x-overflow': 'drop-head', 'x-message-ttl': 604_800_000, 'x-expires': 600_000, 'x-dead-letter-exchange': `${prefix}.dlx` };

const run = (cmd, argv) => execFileSync(cmd, argv, { encoding: 'utf8', timeout: 120_000 });
const memoryBreakdown = () => JSON.parse(run('rabbitmq-diagnostics', ['-q', 'memory_breakdown', '--unit', 'bytes', '--formatter', 'json']));
const categories = ['queue_procs', 'connection_channels', 'connection_other', 'mnesia', 'other_ets', 'metrics', 'binary'];
const pick = (m) => Object.fromEntries(categories.map((c) => [c, m[c]?.bytes ?? 0]));
/** Memory (bytes) and consumers of this run's queues, from the queue processes themselves. */
function ourQueues() {
  const lines = run('rabbitmqctl', ['-q', 'list_queues', 'name', 'memory', 'consumers', '--no-table-headers']).split('\n');
  const ours = lines.map((l) => l.trim().split(/\s+/)).filter(([name]) => name?.startsWith(prefix));
  return { count: ours.length, memory: ours.reduce((s, [, m]) => s + Number(m), 0), consumers: ours.reduce((s, [, , c]) => s + Number(c), 0) };
}
const beamPid = Number(run('pgrep', ['-o', '-f', 'beam.smp']).trim());
const beamCpuSeconds = () => {
  const fields = readFileSync(`/proc/${beamPid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};
/** RabbitMQ's CPU (share of one core) over `idleSeconds` with nothing done by this script. */
async function beamCpuShare() {
  const before = beamCpuSeconds();
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  return (beamCpuSeconds() - before) / idleSeconds;
}
const delta = (after, before) => Object.fromEntries(categories.map((c) => [c, after[c] - before[c]]));
const perUnit = (d, n) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Math.round(v / n)]));

const result = { when: new Date().toISOString(), prefix, rabbitmq: {}, redis: {} };
const connection = await amqp.connect(amqpUrl, { clientProperties: { connection_name: prefix } });
try {
  const channel = await connection.createChannel();
  const names = Array.from({ length: queues }, (_, i) => `${prefix}.q.${i}`);
  const cpuBase = await beamCpuShare();
  const mem0 = pick(memoryBreakdown());
  const declareStart = process.hrtime.bigint();
  const cpuDeclare0 = beamCpuSeconds();
  // amqplib runs one RPC at a time per channel; the declares are queued on the one channel.
  await Promise.all(names.map((q) => channel.assertQueue(q, { durable: true, arguments: mailboxArgs })));
  const declareSeconds = Number(process.hrtime.bigint() - declareStart) / 1e9;
  // Others may use the same broker: their share of its CPU, measured just before, is taken off.
  const declareCpu = beamCpuSeconds() - cpuDeclare0 - cpuBase * declareSeconds;
  // A profile's first join on a node declares its (usually existing) mailbox again: what a join storm costs.
  const redeclare0 = beamCpuSeconds();
  const redeclareStart = process.hrtime.bigint();
  await Promise.all(names.map((q) => channel.assertQueue(q, { durable: true, arguments: mailboxArgs })));
  const redeclareSeconds = Number(process.hrtime.bigint() - redeclareStart) / 1e9;
  const redeclareCpu = beamCpuSeconds() - redeclare0 - cpuBase * redeclareSeconds;
  // Measured after the idle window: an idle classic queue hibernates (compacts its process) after a while.
  const cpuIdleQueues = await beamCpuShare();
  const idle = ourQueues();
  const mem1 = pick(memoryBreakdown());

  // One consumer per queue, as a node holding every profile would have (single active consumer, prefetch 500).
  const consumerChannels = await Promise.all(Array.from({ length: 8 }, () => connection.createChannel()));
  await Promise.all(consumerChannels.map((c) => c.prefetch(500)));
  const consumeStart = beamCpuSeconds();
  const consumeClock = process.hrtime.bigint();
  await Promise.all(names.map((q, i) => consumerChannels[i % consumerChannels.length].consume(q, () => {}, { noAck: false })));
  const consumeCpu = beamCpuSeconds() - consumeStart - (cpuBase * Number(process.hrtime.bigint() - consumeClock)) / 1e9;
  const cpuIdleConsumers = await beamCpuShare();
  const consumed = ourQueues();
  const mem2 = pick(memoryBreakdown());

  result.rabbitmq = {
    queues,
    queueProcessBytesPerIdleQueue: Math.round(idle.memory / idle.count),
    queueProcessBytesPerQueueWithConsumer: Math.round(consumed.memory / consumed.count),
    consumersSeen: consumed.consumers,
    nodeMemoryDeltaPerQueue: perUnit(delta(mem1, mem0), queues),
    nodeMemoryDeltaPerConsumer: perUnit(delta(mem2, mem1), queues),
    declaresPerSecond: Math.round(queues / declareSeconds),
    cpuMicrosecondsPerDeclare: Math.round((declareCpu / queues) * 1e6),
    redeclaresPerSecond: Math.round(queues / redeclareSeconds),
    cpuMicrosecondsPerRedeclare: Math.round((redeclareCpu / queues) * 1e6),
    cpuMicrosecondsPerConsume: Math.round((consumeCpu / queues) * 1e6),
    idleCpuShare: { before: cpuBase, withQueues: cpuIdleQueues, withConsumers: cpuIdleConsumers },
  };
  for (const c of consumerChannels) await c.close();
  await Promise.all(names.map((q) => channel.deleteQueue(q)));
} finally {
  await connection.close().catch(() => {});
}

const redis = new Redis(redisUrl, { connectionName: `${prefix}:cmd` });
const sub = new Redis(redisUrl, { connectionName: `${prefix}:sub` });
try {
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const channels = Array.from({ length: redisChannels }, (_, i) => `${prefix}:status/mod-${i}/power`);
  const before = await used();
  for (let i = 0; i < channels.length; i += 1000) await sub.subscribe(...channels.slice(i, i + 1000));
  const subscribed = await used();
  await sub.unsubscribe();
  const afterUnsubscribe = await used();
  const pipeline = redis.pipeline();
  for (let i = 0; i < redisChannels; i++) pipeline.hset(`${prefix}:status/mod-${i}`, 'power', 'false', 'volume', '50', 'input', '"hdmi1"');
  await pipeline.exec();
  const stored = await used();
  result.redis = {
    channels: redisChannels,
    bytesPerSubscribedChannel: Math.round((subscribed - before) / redisChannels),
    bytesPerStatusVariable: Math.round((stored - afterUnsubscribe) / (redisChannels * 3)),
    note: 'used_memory deltas of the whole Redis (others share it); status: one hash per module with 3 small fields',
  };
  for (let i = 0; i < redisChannels; i += 1000) {
    await redis.del(...Array.from({ length: Math.min(1000, redisChannels - i) }, (_, j) => `${prefix}:status/mod-${i + j}`));
  }
} finally {
  redis.disconnect();
  sub.disconnect();
}
console.log(JSON.stringify(result, null, 2));
