import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as amqp from 'amqplib';
import { WebSocket } from 'ws';
import { forkWorker, nextMessage, sendIfRunning, spawnProcess, stop, stopAll } from './lib/children.js';
import { BenchUsageError, parseBenchArgs, type System, usage } from './lib/args.js';
import { summarize } from './lib/percentiles.js';
import { cpuPercent, findBrokerPid, type ProcSample, sampleProc, sampleTree, trySampleProc } from './lib/proc-stats.js';
import { compareFleet, copiesPerMessage, type FleetComparison, joinPlan, judgeFleet, oneNodeCounterpart } from './lib/fleet.js';
import { byRound, formatSpread, metCount, spreadOf } from './lib/rounds.js';
import { judgeAck } from './lib/ack-targets.js';
import { lowBrokerOpenFiles, readBrokerOpenFiles } from './lib/broker-limits.js';
import { calibrateBroker } from './lib/broker-calibration.js';
import { mailboxQueueArguments, mailboxQueueName, relayQueueName } from '../src/backends/rabbitmq/topology.js';
import { deleteKeysWithPrefix, redisUrl } from '../test/helpers/redis.js';

/**
 * `npm run bench [-- --quick] [-- --scenario <name or prefix>] [-- --cpu-prof]` (`-- --help`: usage): Switchboard beside RabbitMQ
 * Web-STOMP and a raw amqplib consumer on this machine's RabbitMQ. Starts the gateway (node dist/src/main.js)
 * and the load processes (bench/workers/*) itself, stops everything it started, and writes
 * bench/results/<time>.json and .md. Bounded: every wait has a timeout, every loop an end.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const stompUrl = process.env.STOMP_URL ?? 'ws://127.0.0.1:15674/ws';
const runBase = `bench${Date.now().toString(36)}`;
/** Prefix of every name a scenario creates (queues, node ids, Redis keys); one per round, so a round never meets the last one's. */
let runId = runBase;
// The gateway's default retention (config schema): the STOMP and raw runs declare identical queues.
const retention = { maxLength: 10_000, messageTtlMs: 7 * 24 * 3600_000, queueExpiresMs: 30 * 24 * 3600_000 };
const deadLetterQueue = 'switchboard.dead_letter';

type Rate = 'max' | number;

interface NotifyScenario {
  kind: 'notify';
  name: string;
  profiles: number;
  persistent: boolean;
  rate: Rate;
  /** Gateway only: the clients join with acknowledged delivery and acknowledge what they received. */
  ack?: boolean;
  /** Gateway processes (gateway rows only; Web-STOMP and raw rows always have one consumer). */
  nodes: 1 | 2;
  /** With two nodes: every sharedEvery-th profile is joined on both (1: all, relayed), the others on one. */
  sharedEvery: number;
}
interface IdleScenario {
  kind: 'idle';
  name: string;
  sockets: number;
  /** Gateway worker processes (`workers`); more than one runs on RabbitMQ and Redis. */
  workers: number;
}
interface ControlScenario {
  kind: 'control';
  name: string;
  /** bind: the driver changes the variable at this fixed rate (each change is a notify per socket); else as fast as it can. */
  changesPerSecond?: number;
  /**
   * exec on a fleet of two nodes on Redis: the clients talk to the node that runs the module (`owner`) or
   * to the other one, which routes every exec to it (`routed`).
   */
  fleet?: 'owner' | 'routed';
  /** bind: one gateway of this many workers on RabbitMQ and Redis (the module runs on one of them). */
  workers?: number;
}
type Scenario = NotifyScenario | IdleScenario | ControlScenario;

interface NotifyRow {
  scenario: string;
  system: System;
  deliveriesPerSecond: number;
  published: number;
  latencyMs: ReturnType<typeof summarize>;
  /** The gateway's CPU (gateway rows) or the raw consumer's (amqp rows); none for Web-STOMP (inside RabbitMQ). */
  processCpuPercent: number | null;
  cpuMicrosPerMessage: number | null;
  rssMiB: number | null;
  brokerCpuPercent: number | null;
  /**
   * Two-node rows: ms from "every socket joined" until every socket had its first message, the relay's
   * set-up (relay queues declared, bound and consumed on both nodes; 200 ms resolution).
   */
  firstMessageAllSocketsMs?: number;
  /** Two-node rows: each node's CPU % and RSS (the row's CPU, µs and RSS are the two together). */
  perNode?: Array<{ cpuPercent: number; rssMiB: number }>;
  /** --heap-probe: each gateway's memory right after a forced GC, before the measurement and after it. */
  heap?: Array<{ nodeId: string; before: HeapProbe; after: HeapProbe }>;
}
interface IdleRow {
  scenario: string;
  workers: number;
  sockets: number;
  joinsPerSecond: number;
  /** The gateway's CPU time per join while the sockets connected and joined (what a join costs it). */
  gatewayCpuMicrosPerJoin: number;
  /** The bench's client processes' CPU per join: if they sit near a core each, they, not the gateway, pace the joins. */
  clientCpuMicrosPerJoin: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerSocketKiB: number;
}

const args = process.argv.slice(2);
const parsed = (() => {
  try {
    return parseBenchArgs(args);
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\nTry: npm run bench -- --help\n`);
    process.exit(2);
  }
})();
if (parsed.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const { quick, cpuProf, heapProbe, systems, rounds } = parsed;
const picked = parsed.scenario;
const warmupMs = quick ? 1_000 : 3_000;
const measureMs = parsed.measureSeconds !== undefined ? parsed.measureSeconds * 1_000 : quick ? 4_000 : 10_000;

function allScenarios(): Scenario[] {
  const list: Scenario[] = [];
  for (const profiles of [1, 1000]) {
    for (const persistent of [false, true]) {
      for (const rate of ['max', 1000, 5000] as Rate[]) {
        const rateName = rate === 'max' ? 'max' : `${rate / 1000}k`;
        list.push({ kind: 'notify', name: `notify-${profiles}-${persistent ? 'persistent' : 'transient'}-${rateName}`, profiles, persistent, rate, nodes: 1, sharedEvery: 1 });
      }
    }
  }
  // Two gateway processes: every profile joined by one socket on each (relayed), and a mix where a fifth are.
  for (const [variant, sharedEvery] of [['2nodes', 1], ['2nodes-mixed', 5]] as const) {
    for (const persistent of [false, true]) {
      for (const rate of ['max', 1000] as Rate[]) {
        if (variant === '2nodes-mixed' && (persistent || rate !== 'max')) continue;
        const rateName = rate === 'max' ? 'max' : `${rate / 1000}k`;
        const name = `notify-1000-${variant}-${persistent ? 'persistent' : 'transient'}-${rateName}`;
        list.push({ kind: 'notify', name, profiles: 1000, persistent, rate, nodes: 2, sharedEvery });
      }
    }
  }
  // Acknowledged delivery beside plain at 1,000 profiles (targets: >= 80 % of plain's rate, p99 within 1 ms at 5k/s).
  for (const rate of ['max', 5000] as Rate[]) {
    list.push({ kind: 'notify', name: `notify-1000-transient-${rate === 'max' ? 'max' : '5k'}-ack`, profiles: 1000, persistent: false, rate, nodes: 1, sharedEvery: 1, ack: true });
  }
  list.push(
    { kind: 'idle', name: 'idle-10000', sockets: 10_000, workers: 1 },
    { kind: 'idle', name: 'idle-10000-workers-3', sockets: 10_000, workers: 3 },
    { kind: 'idle', name: 'idle-19000', sockets: 19_000, workers: 1 },
    // One process holds at most 20,000 open files here: 50,000 sockets need three workers.
    { kind: 'idle', name: 'idle-50000-workers-3', sockets: 50_000, workers: 3 },
  );
  list.push(
    { kind: 'control', name: 'control-bind-1000' },
    { kind: 'control', name: 'control-bind-1000-100k', changesPerSecond: 100 },
    { kind: 'control', name: 'control-bind-1000-100k-workers-3', changesPerSecond: 100, workers: 3 },
    { kind: 'control', name: 'control-exec-100' },
    { kind: 'control', name: 'control-exec-100-fleet-owner', fleet: 'owner' },
    { kind: 'control', name: 'control-exec-100-fleet-routed', fleet: 'routed' },
    { kind: 'control', name: 'control-exec-1-fleet-owner', fleet: 'owner' },
    { kind: 'control', name: 'control-exec-1-fleet-routed', fleet: 'routed' },
  );
  return list;
}

function selectScenarios(): Scenario[] {
  const all = allScenarios();
  if (picked) {
    // Several names, comma-separated, give one run (and one table) with all of them, e.g. joins beside the ratios.
    const names = picked.split(',').map((n) => n.trim());
    const chosen = all.filter((s) => names.some((n) => s.name === n || s.name.startsWith(`${n}-`)));
    if (chosen.length === 0) {
      process.stderr.write(`bench: no scenario "${picked}"; known: ${all.map((s) => s.name).join(', ')}\n`);
      process.exit(2);
    }
    // A two-node row is only read beside the one-node row of the same run (same machine load): run that too.
    const withBase = chosen.flatMap((s) => {
      const base = oneNodeCounterpart(s.name);
      return [...all.filter((b) => b.name === base), s];
    });
    return withBase.filter((s, i) => withBase.findIndex((o) => o.name === s.name) === i);
  }
  if (quick) {
    const names = ['notify-1000-transient-max', 'notify-1000-transient-5k', 'notify-1000-transient-max-ack', 'notify-1000-transient-5k-ack', 'control-exec-100', 'control-exec-100-fleet-owner', 'control-exec-100-fleet-routed', 'control-exec-1-fleet-owner', 'control-exec-1-fleet-routed'];
    return all.filter((s) => names.includes(s.name));
  }
  return all;
}

// ---------------------------------------------------------------- gateway process

interface GatewayProcess {
  /** The gateway process (the primary with several workers: sample it with sampleTree). */
  pid: number;
  url: string;
  wsUrl: string;
  nodeId: string;
  /** With --heap-probe: forces a GC in the process, writes a heap snapshot, resolves with what the GC kept. */
  probeHeap(): Promise<HeapProbe>;
  stop(): Promise<void>;
}

interface HeapProbe {
  file: string;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startGateway(tokens: Record<string, string>, label: string, workers = 1): Promise<GatewayProcess> {
  const config = { tokens: { kind: 'static', tokens }, ...(workers > 1 && { workers, control: { redisKeyPrefix: `${runId}-${label}:` } }) };
  return startGatewayWith(config, label, 'dist/src/main.js', { AMQP_URL: amqpUrl, ...(workers > 1 && { REDIS_URL: redisUrl }) });
}

/** With several workers, /health answers as soon as one of them listens: wait for all (the primary's gauge). */
async function allWorkersListening(url: string, workers: number): Promise<boolean> {
  if (workers <= 1) return true;
  const text = await fetch(`${url}/metrics`).then((r) => r.text(), () => '');
  return text.includes(`switchboard_workers_listening{worker="primary"} ${workers}`);
}

async function startGatewayWith(config: Record<string, unknown>, label: string, entry: string, env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const nodeId = `${runId}-${label}`;
  const dir = `${root}bench/results/tmp`;
  mkdirSync(dir, { recursive: true });
  const configFile = `${dir}/${nodeId}.json`;
  writeFileSync(configFile, JSON.stringify(config));
  const profiles = `${root}bench/results/profiles`;
  const nodeArgs = [
    // Workers inherit these flags: one name for all would keep only the last profile, so with workers
    // Node's default name (which has the pid) is kept.
    ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`, ...(config.workers ? [] : [`--cpu-prof-name=${nodeId}.cpuprofile`])] : []),
    ...parsed.gatewayNodeFlags,
    ...(heapProbe ? ['--expose-gc', '--import', `${root}dist/bench/lib/heap-probe.js`] : []),
  ];
  if (heapProbe) mkdirSync(profiles, { recursive: true });
  const { AMQP_URL: _ignored, ...inherited } = process.env;
  const child = spawnProcess(process.execPath, [...nodeArgs, `${root}${entry}`], {
    ...inherited,
    ...env,
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ID: nodeId,
    LOG_LEVEL: 'warn',
    SWITCHBOARD_CONFIG: configFile,
    HEAP_PROBE_DIR: profiles,
  });
  let stderr = '';
  const probes: Array<(probe: HeapProbe) => void> = [];
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2_000);
    for (const line of d.toString().split('\n')) {
      if (line.startsWith('{"heapProbe"')) probes.shift()?.((JSON.parse(line) as { heapProbe: HeapProbe }).heapProbe);
    }
  });
  const probeHeap = () =>
    new Promise<HeapProbe>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no heap probe from ${nodeId} within 120 s`)), 120_000);
      probes.push((probe) => (clearTimeout(timer), resolve(probe)));
      child.kill('SIGUSR2');
    });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (true) {
    if (child.exitCode !== null) throw new Error(`gateway exited at start: ${stderr}`);
    const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
    if (ok && (await allWorkersListening(url, Number(config.workers ?? 1)))) break;
    if (Date.now() > deadline) throw new Error('gateway not healthy within 30 s');
    await sleep(100);
  }
  return { pid: child.pid!, url, wsUrl: `ws://127.0.0.1:${port}/`, nodeId, probeHeap, stop: () => stop(child) };
}

// ---------------------------------------------------------------- RabbitMQ housekeeping

/** Runs `fn` on a fresh admin channel; a failure names `task` and the error's code. */
async function withChannel<T>(task: string, fn: (channel: amqp.Channel) => Promise<T>): Promise<T> {
  try {
    const connection = await amqp.connect(amqpUrl, { clientProperties: { connection_name: 'switchboard-bench-admin' } });
    try {
      const channel = await connection.createChannel();
      return await fn(channel);
    } finally {
      await connection.close().catch(() => {});
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new Error(`bench admin failed to ${task}: ${(err as Error).message}${code !== undefined ? ` (${String(code)})` : ''} at ${new Date().toISOString()}`);
  }
}

/** A profile's mailbox under the gateway's default `notify.queuePrefix`, which the bench's gateways keep. */
const mailboxOf = (profile: string) => mailboxQueueName('message_to_user.', profile);

const declareQueues = (queues: string[]) =>
  withChannel('declare queues', async (channel) => {
    for (const queue of queues) await channel.assertQueue(queue, { durable: true, arguments: mailboxQueueArguments(retention, deadLetterQueue) });
  });

/** Deletes what a run created (queues are durable and would otherwise linger until they expire). */
const deleteQueues = (queues: string[]) =>
  withChannel('delete queues', async (channel) => {
    for (const queue of queues) await channel.deleteQueue(queue).catch(() => {});
  }).catch((err: unknown) => console.warn(`bench: ${(err as Error).message}`));

async function ensureWebStomp(): Promise<void> {
  const reachable = () =>
    new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.setTimeout(1_000);
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => (socket.destroy(), resolve(false)));
      socket.connect(15674, '127.0.0.1');
    });
  if (await reachable()) return;
  console.log('bench: enabling rabbitmq_web_stomp (rabbitmq-plugins enable; the broker is not restarted)');
  execFileSync('rabbitmq-plugins', ['enable', 'rabbitmq_web_stomp'], { stdio: 'ignore', timeout: 60_000 });
  for (let i = 0; i < 60; i++) {
    if (await reachable()) return;
    await sleep(500);
  }
  throw new Error('Web-STOMP did not come up on 127.0.0.1:15674');
}

// ---------------------------------------------------------------- notify scenarios

async function runNotify(scenario: NotifyScenario, system: System): Promise<NotifyRow> {
  const profiles = Array.from({ length: scenario.profiles }, (_, i) => `${runId}-${system}-${scenario.name}-${i}`);
  const queues = profiles.map(mailboxOf);
  const gateways: GatewayProcess[] = [];
  let copies = 1;
  const consumer = forkWorker('consumer');
  const publisher = forkWorker('publisher');
  // Closed loop: the publisher may run `window` messages ahead of what the consumers have received.
  let liveSockets = 0;
  const relayProgress = (m: { type: string; received?: number; liveSockets?: number }) => {
    if (m.type !== 'progress') return;
    liveSockets = m.liveSockets ?? 0;
    sendIfRunning(publisher, { cmd: 'delivered', delivered: Math.floor((m.received ?? 0) / copies) });
  };
  let sockets = profiles.length;
  try {
    if (system === 'gateway') {
      const tokens = Object.fromEntries(profiles.map((p) => [`tok-${p}`, p]));
      const labels = scenario.nodes === 1 ? [''] : ['-a', '-b'];
      gateways.push(...(await Promise.all(labels.map((l) => startGateway(tokens, `${system}-${scenario.name}${l}`)))));
      const joins = joinPlan(Object.keys(tokens), gateways.map((g) => g.wsUrl), scenario.sharedEvery);
      copies = copiesPerMessage(joins, profiles.length);
      sockets = joins.length;
      consumer.send({ cmd: 'start', system, joins, ack: scenario.ack === true });
    } else {
      await declareQueues(queues);
      consumer.send({ cmd: 'start', system, url: system === 'stomp' ? stompUrl : amqpUrl, queues, prefetch: 100 });
    }
    await nextMessage(consumer, 'ready', 120_000);
    const joinedAt = Date.now();
    let firstMessageAllSocketsMs: number | undefined;

    consumer.on('message', relayProgress);
    const window = Math.min(5_000, 1_000 * scenario.profiles);
    publisher.send({ cmd: 'start', url: amqpUrl, queues, persistent: scenario.persistent, rate: scenario.rate, window });
    await nextMessage(publisher, 'ready', 30_000);
    await sleep(warmupMs);
    if (scenario.nodes > 1) {
      // A profile's second node sets up relay queues on both nodes before its first copy flows (a few
      // broker round trips per profile, thousands in all): measure only once every socket has had a message.
      const deadline = Date.now() + 180_000;
      while (liveSockets < sockets) {
        if (Date.now() > deadline) throw new Error(`only ${liveSockets} of ${sockets} sockets received anything within 180 s`);
        await sleep(200);
      }
      firstMessageAllSocketsMs = Date.now() - joinedAt;
      await sleep(warmupMs);
    }

    if (consumer.exitCode !== null || consumer.signalCode !== null) throw new Error(`the ${system} consumer process exited (${consumer.exitCode ?? consumer.signalCode})`);
    const heapBefore = heapProbe ? await Promise.all(gateways.map((g) => g.probeHeap())) : [];
    const measuredPids = gateways.length > 0 ? gateways.map((g) => g.pid) : system === 'amqp' ? [consumer.pid!] : [];
    const brokerPid = findBrokerPid();
    const sampleAll = () => measuredPids.map((pid) => trySampleProc(pid)).filter((p): p is ProcSample => p !== undefined);
    const beforeAll = sampleAll();
    const before = { proc: sumSamples(beforeAll), broker: trySampleProc(brokerPid) };
    consumer.send({ cmd: 'measure' });
    await sleep(measureMs);
    const result = nextMessage<{ received: number; latenciesMs: Float64Array }>(consumer, 'result', 60_000);
    consumer.send({ cmd: 'stop' });
    const afterAll = sampleAll();
    const after = { proc: sumSamples(afterAll), broker: trySampleProc(brokerPid) };
    // After the CPU sample: a snapshot costs the gateway seconds of CPU.
    const heapAfter = heapProbe ? await Promise.all(gateways.map((g) => g.probeHeap())) : [];
    const { received, latenciesMs } = await result;
    // The publisher exits right after its result: nothing more is relayed to it.
    consumer.off('message', relayProgress);
    const published = nextMessage<{ published: number }>(publisher, 'result', 30_000);
    publisher.send({ cmd: 'stop' });
    const publishedCount = (await published).published;

    const seconds = (after.proc ?? after.broker ?? { atMs: 0 }).atMs / 1000 - (before.proc ?? before.broker ?? { atMs: 0 }).atMs / 1000;
    const rate = received / (seconds > 0 ? seconds : measureMs / 1000);
    const cpuSeconds = before.proc && after.proc ? after.proc.cpuSeconds - before.proc.cpuSeconds : undefined;
    return {
      scenario: scenario.name,
      system,
      deliveriesPerSecond: Math.round(rate),
      published: publishedCount,
      latencyMs: summarize(latenciesMs),
      processCpuPercent: before.proc && after.proc ? round(cpuPercent(before.proc, after.proc), 1) : null,
      cpuMicrosPerMessage: cpuSeconds !== undefined && received > 0 ? round((cpuSeconds * 1e6) / received, 2) : null,
      rssMiB: after.proc ? round(after.proc.rssBytes / 2 ** 20, 1) : null,
      brokerCpuPercent: before.broker && after.broker ? round(cpuPercent(before.broker, after.broker), 1) : null,
      ...(firstMessageAllSocketsMs !== undefined && { firstMessageAllSocketsMs }),
      ...(gateways.length > 1 &&
        beforeAll.length === afterAll.length && {
          perNode: afterAll.map((a, i) => ({ cpuPercent: round(cpuPercent(beforeAll[i]!, a), 1), rssMiB: round(a.rssBytes / 2 ** 20, 1) })),
        }),
      ...(heapProbe && { heap: gateways.map((g, i) => ({ nodeId: g.nodeId, before: heapBefore[i]!, after: heapAfter[i]! })) }),
    };
  } finally {
    consumer.off('message', relayProgress);
    await stop(publisher, 5_000);
    if (consumer.connected) consumer.send({ cmd: 'close' });
    await stop(consumer, 5_000);
    await Promise.all(gateways.map((g) => g.stop()));
    // Nodes delete their relay queues when the profile is left; these are for a node that could not.
    const relayQueues = gateways.length > 1 ? gateways.flatMap((g) => profiles.map((p) => relayQueueName(g.nodeId, p))) : [];
    await deleteQueues([...queues, ...gateways.map((g) => `switchboard.node.${g.nodeId}`), ...relayQueues]);
  }
}

// ---------------------------------------------------------------- idle sockets

async function runIdle(scenario: IdleScenario): Promise<IdleRow> {
  const profiles = Array.from({ length: 1_000 }, (_, i) => `${runId}-idle-${i}`);
  const tokens = Object.fromEntries(profiles.map((p) => [`tok-${p}`, p]));
  const mailboxes = profiles.map(mailboxOf);
  // The backend's mailboxes exist, as in the notify rows: a burst of joins in production is clients coming
  // back (a restart, a network blip), and RabbitMQ creates new durable queues at its own pace (about 450/s
  // here, docs/performance.md "Joins"), which no gateway can change.
  await declareQueues(mailboxes);
  const gateway = await startGateway(tokens, scenario.name, scenario.workers);
  const perProcess = 9_000; // under the 20,000 open-files cap, and the ephemeral ports of one source address
  const workers = Array.from({ length: Math.ceil(scenario.sockets / perProcess) }, () => forkWorker('idle-clients'));
  try {
    await sleep(1_000);
    const before = sampleTree(gateway.pid);
    const startedAt = performance.now();
    const ready = workers.map((w) => nextMessage<{ cpuMicros?: number }>(w, 'ready', 300_000));
    workers.forEach((worker, i) => {
      const count = Math.min(perProcess, scenario.sockets - i * perProcess);
      worker.send({ cmd: 'start', url: gateway.wsUrl, tokens: Object.keys(tokens), count, localAddress: `127.0.0.${10 + i}`, concurrency: 100 });
    });
    const clientCpuMicros = (await Promise.all(ready)).reduce((sum, r) => sum + (r.cpuMicros ?? 0), 0);
    const joinSeconds = (performance.now() - startedAt) / 1000;
    const joined = sampleTree(gateway.pid);
    await sleep(3_000); // let allocation settle
    const after = sampleTree(gateway.pid);
    return {
      scenario: scenario.name,
      workers: scenario.workers,
      sockets: scenario.sockets,
      joinsPerSecond: Math.round(scenario.sockets / joinSeconds),
      gatewayCpuMicrosPerJoin: round(((joined.cpuSeconds - before.cpuSeconds) * 1e6) / scenario.sockets, 1),
      clientCpuMicrosPerJoin: round(clientCpuMicros / scenario.sockets, 1),
      rssBeforeMiB: round(before.rssBytes / 2 ** 20, 1),
      rssAfterMiB: round(after.rssBytes / 2 ** 20, 1),
      rssPerSocketKiB: round((after.rssBytes - before.rssBytes) / 1024 / scenario.sockets, 2),
    };
  } finally {
    for (const w of workers) if (w.connected) w.send({ cmd: 'close' });
    await Promise.all(workers.map((w) => stop(w, 5_000)));
    await gateway.stop();
    await deleteQueues([...mailboxes, `switchboard.node.${gateway.nodeId}`]);
    if (scenario.workers > 1) await deleteKeysWithPrefix(`${runId}-${scenario.name}:`);
  }
}

// ---------------------------------------------------------------- control scenarios

interface ControlRow {
  scenario: string;
  sockets: number;
  /** Notifies received per second (bind) or exec round trips per second (exec). */
  perSecond: number;
  latencyMs: ReturnType<typeof summarize>;
  gatewayCpuPercent: number;
  rssMiB: number;
}

async function runControl(scenario: ControlScenario): Promise<ControlRow> {
  const mode = scenario.name.startsWith('control-bind') ? 'bind' : 'exec';
  // control-exec-1-*: one closed loop, the latency of one exec with nothing queued ahead of it.
  const sockets = mode === 'bind' ? 1_000 : scenario.name.startsWith('control-exec-1-') ? 1 : 100;
  const key = `bench-key-${runId}`;
  const sys = 'sys-bench';
  const redisKeyPrefix = `${runId}-${scenario.name}:`;
  const config = {
    apiKeys: [{ id: 'bench', key, clearance: 'admin', systems: ['*'], scopes: ['public', 'control'] }],
    control: {
      systems: [{ id: sys, name: 'Bench', zones: [], modules: ['mod-ticker-1'] }],
      modules: [{ id: 'mod-ticker-1', driver: `${root}dist/bench/drivers/ticker.js`, settings: {} }],
      // The bench measures throughput, not the abuse limits.
      execsPerSecondPerSocket: 1_000_000,
      execsPerSecondPerCredential: 1_000_000,
      ...((scenario.fleet || scenario.workers) && { redisKeyPrefix }),
    },
    ...(scenario.workers && { workers: scenario.workers }),
  };
  const env: Record<string, string> = scenario.fleet ? { REDIS_URL: redisUrl } : scenario.workers ? { REDIS_URL: redisUrl, AMQP_URL: amqpUrl } : {};
  const nodes = await Promise.all(
    (scenario.fleet ? ['a', 'b'] : ['']).map((n) => startGatewayWith(config, `${scenario.name}${n && `-${n}`}`, 'dist/src/main.js', env)),
  );
  // Fleet rows: the measured node is the owner of the module, or the other node (every exec routed).
  const owner = scenario.fleet ? await moduleOwner(nodes[0]!, key, 'mod-ticker-1') : nodes[0]!.nodeId;
  const gateway = nodes.find((n) => (scenario.fleet === 'routed' ? n.nodeId !== owner : n.nodeId === owner))!;
  const url = `${gateway.wsUrl}api/engine/v2/systems/control?api-key=${key}`;
  const worker = forkWorker('control-clients');
  let driverSocket: WebSocket | undefined;
  let driving = false;
  try {
    worker.send({ cmd: 'start', mode, url, count: sockets, sys });
    await nextMessage(worker, 'ready', 120_000);
    if (mode === 'bind') {
      // The driver changes the bound variable as fast as it can (rounds of 20,000 changes) or at a fixed rate
      // (rounds of one second).
      const ws = new WebSocket(url, { perMessageDeflate: false });
      driverSocket = ws;
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
      driving = true;
      let id = 0;
      const call = scenario.changesPerSecond ? { name: 'pace', args: [scenario.changesPerSecond, 1] } : { name: 'run', args: [20_000] };
      const round = () => driving && ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ id: ++id, cmd: 'exec', sys, mod: 'Ticker', index: 1, ...call }));
      ws.on('message', (data) => String(data).includes('"type":"success"') && round());
      round();
    }
    await sleep(warmupMs);
    // With workers the gateway is the whole tree (primary, workers, driver hosts); else the one process, as before.
    const sample = scenario.workers ? sampleTree : sampleProc;
    const before = sample(gateway.pid);
    worker.send({ cmd: 'measure' });
    await sleep(measureMs);
    const result = nextMessage<{ received: number; latenciesMs: Float64Array }>(worker, 'result', 60_000);
    worker.send({ cmd: 'stop' });
    const after = sample(gateway.pid);
    driving = false;
    const { received, latenciesMs } = await result;
    return {
      scenario: scenario.name,
      sockets,
      perSecond: Math.round(received / ((after.atMs - before.atMs) / 1000)),
      latencyMs: summarize(latenciesMs),
      gatewayCpuPercent: round(cpuPercent(before, after), 1),
      rssMiB: round(after.rssBytes / 2 ** 20, 1),
    };
  } finally {
    driverSocket?.terminate();
    if (worker.connected) worker.send({ cmd: 'close' });
    await stop(worker, 5_000);
    await Promise.all(nodes.map((n) => n.stop()));
    if (scenario.fleet || scenario.workers) await deleteKeysWithPrefix(redisKeyPrefix);
  }
}

/** The node running a module, from the admin stats (waits until placement settled). */
async function moduleOwner(via: GatewayProcess, key: string, module: string): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const stats = (await (await fetch(`${via.url}/api/admin/v1/stats`, { headers: { 'X-API-Key': key } })).json()) as {
      fleet: { nodes: string[]; modules: Record<string, { node: string; running: boolean } | null> } | null;
    };
    const placed = stats.fleet?.modules[module];
    if (placed?.running && stats.fleet!.nodes.length === 2) return placed.node;
    await sleep(100);
  }
  throw new Error(`${module} not placed within 10 s`);
}

// ---------------------------------------------------------------- report

/** One round's comparisons, as figures: the targets are judged on them, or on their medians over rounds. */
interface RoundComparisons {
  /** The gateway beside Web-STOMP and the raw amqplib consumer (null: that system was not measured). */
  vsOthers: Array<{ scenario: string; stompRatio: number | null; rawRatio: number | null; p50MinusRawMs: number | null; p99MinusRawMs: number | null }>;
  ackVsPlain: Array<{ scenario: string; ratio: number | null; p99MinusPlainMs: number }>;
  fleet: FleetComparison[];
}

function compareRound(notify: readonly NotifyRow[]): RoundComparisons {
  const find = (scenario: string, system: System) => notify.find((r) => r.scenario === scenario && r.system === system);
  const ratio = (a: NotifyRow, b: NotifyRow | undefined) => (b && b.deliveriesPerSecond > 0 ? a.deliveriesPerSecond / b.deliveriesPerSecond : null);
  const vsOthers: RoundComparisons['vsOthers'] = [];
  for (const scenario of new Set(notify.map((r) => r.scenario))) {
    const gateway = find(scenario, 'gateway');
    if (!gateway) continue;
    const raw = find(scenario, 'amqp');
    vsOthers.push({
      scenario,
      stompRatio: ratio(gateway, find(scenario, 'stomp')),
      rawRatio: ratio(gateway, raw),
      p50MinusRawMs: raw ? gateway.latencyMs.p50 - raw.latencyMs.p50 : null,
      p99MinusRawMs: raw ? gateway.latencyMs.p99 - raw.latencyMs.p99 : null,
    });
  }
  const ackVsPlain: RoundComparisons['ackVsPlain'] = [];
  for (const ack of notify.filter((r) => r.scenario.endsWith('-ack'))) {
    const plain = find(ack.scenario.slice(0, -'-ack'.length), 'gateway');
    if (plain) ackVsPlain.push({ scenario: ack.scenario, ratio: ratio(ack, plain), p99MinusPlainMs: ack.latencyMs.p99 - plain.latencyMs.p99 });
  }
  const fleet = compareFleet(
    notify
      .filter((r) => r.system === 'gateway')
      .map((r) => ({ scenario: r.scenario, deliveriesPerSecond: r.deliveriesPerSecond, p99Ms: r.latencyMs.p99, cpuMicrosPerDelivery: r.cpuMicrosPerMessage })),
  );
  return { vsOthers, ackVsPlain, fleet };
}

const fleetNote =
  "Two-node rows: deliveries over both nodes' sockets (a message reaches each socket of its profile), CPU % and µs per delivery of both gateway processes together, RSS of both. Targets (issue 16): ratio ≥ 0.70 at max rate, p99 within 2 ms at 1k/s, CPU ratio ≤ 1.5.";

function comparisonLines(notify: readonly NotifyRow[], c: RoundComparisons): string[] {
  const f = fixed;
  const lines = ['| scenario | gateway / Web-STOMP | gateway / raw amqplib | p50 − raw (ms) | p99 − raw (ms) |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of c.vsOthers) lines.push(`| ${r.scenario} | ${f(r.stompRatio)} | ${f(r.rawRatio)} | ${f(r.p50MinusRawMs, 3)} | ${f(r.p99MinusRawMs, 3)} |`);
  if (c.ackVsPlain.length > 0) {
    lines.push('', '| scenario | ack / plain deliveries | p99 ack − plain (ms) |', '| --- | ---: | ---: |');
    for (const r of c.ackVsPlain) {
      const met = judgeAck(r.scenario, r.ratio, r.p99MinusPlainMs);
      lines.push(`| ${r.scenario} | ${f(r.ratio)}${verdict(met.ratioMet)} | ${f(r.p99MinusPlainMs, 3)}${verdict(met.p99Met)} |`);
    }
  }
  lines.push('');
  if (c.fleet.length > 0) {
    lines.push('| two-node scenario | one-node row | deliveries/s ratio | p99 − one-node (ms) | CPU µs per delivery ratio | per node CPU % / RSS MiB | all joined → first message at every socket, ms |');
    lines.push('| --- | --- | ---: | ---: | ---: | --- | ---: |');
    for (const r of c.fleet) {
      const two = notify.find((row) => row.scenario === r.scenario && row.system === 'gateway');
      const perNode = two?.perNode ?? [];
      lines.push(
        `| ${r.scenario} | ${r.oneNode} | ${f(r.throughputRatio)}${verdict(r.throughputMet)} | ${f(r.p99DiffMs, 3)}${verdict(r.p99Met)} | ${f(r.cpuRatio)}${verdict(r.cpuMet)} | ${perNode.map((n) => `${n.cpuPercent} / ${n.rssMiB}`).join(', ')} | ${two?.firstMessageAllSocketsMs ?? '—'} |`,
      );
    }
    lines.push('', fleetNote, '');
  }
  return lines;
}

/** Medians over the rounds of each comparison, the targets judged on them, and how many rounds met each. */
function roundsSummary(perRound: readonly RoundComparisons[]): string[] {
  const n = perRound.length;
  const lines = [`Medians over ${n} rounds (lowest to highest), each figure taken within its round:`, ''];
  const scenarios = <T extends { scenario: string }>(pick: (c: RoundComparisons) => T[]) => [...new Set(perRound.flatMap((c) => pick(c).map((r) => r.scenario)))];
  const across = <T extends { scenario: string }>(pick: (c: RoundComparisons) => T[], scenario: string) =>
    perRound.map((c) => pick(c).find((r) => r.scenario === scenario)).filter((r): r is T => r !== undefined);
  const vsOthers: string[] = [];
  for (const scenario of scenarios((c) => c.vsOthers)) {
    const rows = across((c) => c.vsOthers, scenario);
    if (rows.every((r) => r.stompRatio === null && r.rawRatio === null)) continue; // the gateway alone was measured
    vsOthers.push(
      `| ${scenario} | ${formatSpread(spreadOf(rows.map((r) => r.stompRatio)))} | ${formatSpread(spreadOf(rows.map((r) => r.rawRatio)))} | ${formatSpread(spreadOf(rows.map((r) => r.p50MinusRawMs)), 3)} | ${formatSpread(spreadOf(rows.map((r) => r.p99MinusRawMs)), 3)} |`,
    );
  }
  if (vsOthers.length > 0) lines.push('| scenario | gateway / Web-STOMP | gateway / raw amqplib | p50 − raw (ms) | p99 − raw (ms) |', '| --- | ---: | ---: | ---: | ---: |', ...vsOthers, '');
  const judged = (median: string, met: boolean | null, verdicts: Array<boolean | null>) => {
    const { met: times, judged: of } = metCount(verdicts);
    return of === 0 ? median : `${median}${verdict(met)}, met in ${times} of ${of}`;
  };
  const ackScenarios = scenarios((c) => c.ackVsPlain);
  if (ackScenarios.length > 0) {
    lines.push('| scenario | ack / plain deliveries | p99 ack − plain (ms) |', '| --- | ---: | ---: |');
    for (const scenario of ackScenarios) {
      const rows = across((c) => c.ackVsPlain, scenario);
      const ratio = spreadOf(rows.map((r) => r.ratio));
      const p99 = spreadOf(rows.map((r) => r.p99MinusPlainMs));
      const onMedians = judgeAck(scenario, ratio?.median, p99?.median);
      const eachRound = rows.map((r) => judgeAck(r.scenario, r.ratio, r.p99MinusPlainMs));
      lines.push(
        `| ${scenario} | ${judged(formatSpread(ratio), onMedians.ratioMet, eachRound.map((v) => v.ratioMet))} | ${judged(formatSpread(p99, 3), onMedians.p99Met, eachRound.map((v) => v.p99Met))} |`,
      );
    }
  }
  const fleetScenarios = scenarios((c) => c.fleet);
  if (fleetScenarios.length > 0) {
    lines.push('', '| two-node scenario | deliveries/s ratio | p99 − one-node (ms) | CPU µs per delivery ratio |', '| --- | ---: | ---: | ---: |');
    for (const scenario of fleetScenarios) {
      const rows = across((c) => c.fleet, scenario);
      const throughput = spreadOf(rows.map((r) => r.throughputRatio));
      const p99 = spreadOf(rows.map((r) => r.p99DiffMs));
      const cpu = spreadOf(rows.map((r) => r.cpuRatio));
      const onMedians = judgeFleet(scenario, throughput?.median, p99?.median, cpu?.median);
      lines.push(
        `| ${scenario} | ${judged(formatSpread(throughput), onMedians.throughputMet, rows.map((r) => r.throughputMet))} | ${judged(formatSpread(p99, 3), onMedians.p99Met, rows.map((r) => r.p99Met))} | ${judged(formatSpread(cpu), onMedians.cpuMet, rows.map((r) => r.cpuMet))} |`,
      );
    }
  }
  lines.push('');
  return lines;
}

/** A row of one round of `--rounds` (1 without it). */
type InRound<R> = R & { round: number };

const fixed = (v: number | null, digits = 2) => (v === null || Number.isNaN(v) ? '—' : v.toFixed(digits));
const verdict = (v: boolean | null) => (v === null ? '' : v ? ' (met)' : ' (missed)');

function markdown(notify: InRound<NotifyRow>[], idle: InRound<IdleRow>[], control: InRound<ControlRow>[], skipped: string[], machine: Record<string, unknown>): string {
  const lines: string[] = [];
  const f = fixed;
  const several = rounds > 1;
  const roundCell = (r: { round: number }) => (several ? `${r.round} | ` : '');
  const roundHead = several ? 'round | ' : '';
  const roundRule = several ? '---: | ' : '';
  lines.push(`Machine: ${machine.cpu} ×${machine.cores}, ${machine.memGiB} GiB, Node ${machine.node}, load before ${machine.loadBefore}, RabbitMQ open files ${machine.brokerOpenFiles}, RabbitMQ alone ${brokerAlone(machine.brokerCalibrationPerSecond)} (one queue, 3 s; compare runs by it); command: \`${machine.command}\``, '');
  if (notify.length > 0) {
    lines.push(`| ${roundHead}scenario | system | deliveries/s | p50 ms | p99 ms | p99.9 ms | CPU % | µs/msg | RSS MiB | RabbitMQ CPU % |`);
    lines.push(`| ${roundRule}--- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const r of notify) {
      lines.push(
        `| ${roundCell(r)}${r.scenario} | ${r.system} | ${r.deliveriesPerSecond} | ${f(r.latencyMs.p50)} | ${f(r.latencyMs.p99)} | ${f(r.latencyMs.p999)} | ${f(r.processCpuPercent, 1)} | ${f(r.cpuMicrosPerMessage, 1)} | ${f(r.rssMiB, 1)} | ${f(r.brokerCpuPercent, 1)} |`,
      );
    }
    lines.push('', 'CPU %: one core = 100; the gateway process for `gateway`, the consumer process for `amqp`, none for `stomp` (it runs inside RabbitMQ).', '');
    const perRound = byRound(notify, rounds).map((rows) => ({ rows, comparisons: compareRound(rows) }));
    perRound.forEach(({ rows, comparisons }, i) => {
      if (several) lines.push(`Round ${i + 1}:`, '');
      lines.push(...comparisonLines(rows, comparisons));
    });
    if (several) lines.push(...roundsSummary(perRound.map((r) => r.comparisons)));
  }
  const probed = notify.filter((r) => r.heap);
  if (probed.length > 0) {
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    lines.push('| scenario | node | RSS MiB before → after | heap used after GC MiB before → after | external MiB before → after | snapshots |');
    lines.push('| --- | --- | ---: | ---: | ---: | --- |');
    for (const r of probed) {
      for (const h of r.heap!) {
        lines.push(
          `| ${r.scenario} | ${h.nodeId} | ${mib(h.before.rss)} → ${mib(h.after.rss)} | ${mib(h.before.heapUsed)} → ${mib(h.after.heapUsed)} | ${mib(h.before.external)} → ${mib(h.after.external)} | ${h.before.file.split('/').pop()}, ${h.after.file.split('/').pop()} |`,
        );
      }
    }
    lines.push('', 'Heap probe: figures right after a forced full GC (what is retained), before the measurement and after it.', '');
  }
  if (idle.length > 0) {
    lines.push(
      `| ${roundHead}scenario | workers | joined sockets | joins/s | gateway CPU µs per join | bench clients CPU µs per join | gateway RSS before MiB | after MiB | RSS per socket KiB |`,
      `| ${roundRule}--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    );
    for (const r of idle) {
      lines.push(`| ${roundCell(r)}${r.scenario} | ${r.workers} | ${r.sockets} | ${r.joinsPerSecond} | ${r.gatewayCpuMicrosPerJoin} | ${r.clientCpuMicrosPerJoin} | ${r.rssBeforeMiB} | ${r.rssAfterMiB} | ${r.rssPerSocketKiB} |`);
    }
    lines.push('', 'Idle rows: CPU and RSS of the whole gateway (with workers: the primary and every worker, summed).', '');
    if (several) {
      lines.push(`Medians over ${rounds} rounds (lowest to highest):`, '', '| scenario | joins/s | gateway CPU µs per join | RSS per socket KiB |', '| --- | ---: | ---: | ---: |');
      for (const scenario of new Set(idle.map((r) => r.scenario))) {
        const rows = idle.filter((r) => r.scenario === scenario);
        const spread = (pick: (r: IdleRow) => number, digits: number) => formatSpread(spreadOf(rows.map(pick)), digits);
        lines.push(`| ${scenario} | ${spread((r) => r.joinsPerSecond, 0)} | ${spread((r) => r.gatewayCpuMicrosPerJoin, 1)} | ${spread((r) => r.rssPerSocketKiB, 2)} |`);
      }
      lines.push('');
    }
  }
  if (control.length > 0) {
    lines.push(`| ${roundHead}scenario | sockets | per second | p50 ms | p99 ms | p99.9 ms | gateway CPU % | RSS MiB |`, `| ${roundRule}--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const r of control) {
      lines.push(`| ${roundCell(r)}${r.scenario} | ${r.sockets} | ${r.perSecond} | ${r.latencyMs.p50.toFixed(2)} | ${r.latencyMs.p99.toFixed(2)} | ${r.latencyMs.p999.toFixed(2)} | ${r.gatewayCpuPercent} | ${r.rssMiB} |`);
    }
    lines.push('', 'control-bind: notifies received per second over all bound sockets; control-exec: exec round trips per second.', '');
    if (several) {
      lines.push(`Medians over ${rounds} rounds (lowest to highest):`, '', '| scenario | per second | p99 ms |', '| --- | ---: | ---: |');
      for (const scenario of new Set(control.map((r) => r.scenario))) {
        const rows = control.filter((r) => r.scenario === scenario);
        lines.push(`| ${scenario} | ${formatSpread(spreadOf(rows.map((r) => r.perSecond)), 0)} | ${formatSpread(spreadOf(rows.map((r) => r.latencyMs.p99)))} |`);
      }
      lines.push('');
    }
  }
  for (const s of skipped) lines.push(`Not measured: ${s}`);
  return lines.join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Several processes as one: CPU times and RSS added, the time of the last sample. */
function sumSamples(samples: ProcSample[]): ProcSample | undefined {
  if (samples.length === 0) return undefined;
  return {
    atMs: Math.max(...samples.map((s) => s.atMs)),
    cpuSeconds: samples.reduce((sum, s) => sum + s.cpuSeconds, 0),
    rssBytes: samples.reduce((sum, s) => sum + s.rssBytes, 0),
  };
}
const round = (v: number, digits: number) => Number(v.toFixed(digits));
const brokerAlone = (perSecond: unknown) => (typeof perSecond === 'number' ? `${perSecond} msgs/s` : 'not measured (no broker answered)');

interface RunRows {
  notify: InRound<NotifyRow>[];
  idle: InRound<IdleRow>[];
  control: InRound<ControlRow>[];
  skipped: string[];
}

/** Every selected scenario once, its rows numbered with `round`. */
async function measureRound(scenarios: readonly Scenario[], round: number, rows: RunRows): Promise<void> {
  for (const scenario of scenarios) {
    if (scenario.kind === 'notify') {
      // Web-STOMP and the raw consumer have no nodes, nor acknowledged delivery: those scenarios are the gateway's alone.
      for (const system of scenario.nodes === 1 && !scenario.ack ? systems : systems.filter((s) => s === 'gateway')) {
        console.log(`${new Date().toISOString()} ${scenario.name} ${system}: starting`);
        const row = await runNotify(scenario, system).catch((err: unknown) => {
          rows.skipped.push(`${rounds > 1 ? `round ${round}: ` : ''}${scenario.name} ${system}: failed: ${(err as Error).message}`);
          console.error(`${new Date().toISOString()} ${scenario.name} ${system}: failed: ${(err as Error).stack ?? String(err)}`);
          return undefined;
        });
        if (!row) continue;
        rows.notify.push({ ...row, round });
        console.log(`${row.scenario} ${row.system}: ${row.deliveriesPerSecond}/s p50 ${row.latencyMs.p50.toFixed(3)} ms p99 ${row.latencyMs.p99.toFixed(3)} ms cpu ${row.processCpuPercent ?? '—'}% ${row.cpuMicrosPerMessage ?? '—'} µs/msg${row.firstMessageAllSocketsMs !== undefined ? `, every socket's first message ${row.firstMessageAllSocketsMs} ms after all joined` : ''}`);
      }
    } else if (scenario.kind === 'idle') {
      const row = await runIdle(scenario);
      rows.idle.push({ ...row, round });
      console.log(`${row.scenario}: ${row.joinsPerSecond} joins/s (${row.gatewayCpuMicrosPerJoin} µs gateway CPU per join, ${row.clientCpuMicrosPerJoin} µs of the bench's clients), ${row.rssPerSocketKiB} KiB RSS per socket`);
    } else {
      const row = await runControl(scenario);
      rows.control.push({ ...row, round });
      console.log(`${row.scenario}: ${row.perSecond}/s p50 ${row.latencyMs.p50.toFixed(3)} ms p99 ${row.latencyMs.p99.toFixed(3)} ms cpu ${row.gatewayCpuPercent}%`);
    }
  }
}

async function main(): Promise<void> {
  const scenarios = selectScenarios();
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadBefore: loadavg().map((l) => l.toFixed(2)).join(' '),
    command: `npm run bench${args.length ? ` -- ${args.map((arg) => (/\s/.test(arg) ? `'${arg}'` : arg)).join(' ')}` : ''}`,
    brokerOpenFiles: (await readBrokerOpenFiles()) ?? 'unknown',
    // Control rows without workers need no RabbitMQ: a broker that does not answer is reported, not fatal.
    brokerCalibrationPerSecond: await calibrateBroker(amqpUrl).catch(() => 'unavailable'),
  };
  const persistentRows = scenarios.some((s) => s.kind === 'notify' && s.name.includes('persistent'));
  if (persistentRows && typeof machine.brokerOpenFiles === 'number' && machine.brokerOpenFiles < lowBrokerOpenFiles) {
    console.warn(
      `bench: RabbitMQ has ${machine.brokerOpenFiles} open files; the persistent rows will measure its file handle cache (README, "RabbitMQ open files")`,
    );
  }
  console.log(`bench ${runBase}: ${rounds > 1 ? `${rounds} rounds of ` : ''}${scenarios.map((s) => s.name).join(', ')} (load average ${machine.loadBefore}, RabbitMQ alone ${brokerAlone(machine.brokerCalibrationPerSecond)})`);
  const notify: InRound<NotifyRow>[] = [];
  const idle: InRound<IdleRow>[] = [];
  const control: InRound<ControlRow>[] = [];
  const skipped: string[] = [];
  if (scenarios.some((s) => s.kind === 'notify')) await ensureWebStomp();
  for (let round = 1; round <= rounds; round++) {
    runId = rounds > 1 ? `${runBase}r${round}` : runBase;
    if (rounds > 1) console.log(`${new Date().toISOString()} round ${round} of ${rounds}`);
    await measureRound(scenarios, round, { notify, idle, control, skipped });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = `${root}bench/results`;
  mkdirSync(dir, { recursive: true });
  const table = markdown(notify, idle, control, skipped, machine);
  writeFileSync(`${dir}/${stamp}.json`, JSON.stringify({ runId: runBase, rounds, machine, quick, notify, idle, control, skipped }, null, 2));
  writeFileSync(`${dir}/${stamp}.md`, `${table}\n`);
  console.log(`\n${table}\nresults: bench/results/${stamp}.json and .md`);
}

const guard = setTimeout(() => {
  console.error('bench: overall time limit reached; stopping');
  void stopAll().finally(() => process.exit(1));
}, (quick ? 10 : 40) * 60_000);
guard.unref();
process.on('SIGINT', () => void stopAll().finally(() => process.exit(130)));

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
