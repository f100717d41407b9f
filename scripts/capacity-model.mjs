#!/usr/bin/env node
// Turns the measured unit costs and the workload in scripts/capacity-costs.json (or the file named as the
// first argument) into the capacity table of docs/scaling.md, printed as Markdown. Re-run it when a cost
// changes (npm run bench, scripts/measure-unit-costs.mjs) and paste its output into the doc between the
// capacity-model markers; test/processes/capacity-model.test.ts fails while the two differ.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('./capacity-costs.json', import.meta.url);
const { workload: w, machines: m, unitCosts } = JSON.parse(readFileSync(file, 'utf8'));
const cost = (group, key) => {
  const entry = unitCosts[group]?.[key];
  if (typeof entry?.value !== 'number') throw new Error(`unit cost ${group}.${key} is missing`);
  return entry.value;
};

const GiB = 1024 ** 3;
const int = (n) => Math.round(n).toLocaleString('en-US');
const gib = (bytes) => `${(bytes / GiB).toFixed(1)} GiB`;
const cores = (n) => `${n.toFixed(1)} cores`;

// Load: one notification socket per concurrent user; one mailbox queue per profile; a reconnect storm
// brings every user back within the storm window.
const deliveriesPerSecond = (w.concurrentUsers * w.messagesPerUserPerMinute) / 60;
const joinsPerSecond = w.concurrentUsers / (w.reconnectStormMinutes * 60);

// Gateway: CPU per delivered message and per join; RSS per idle joined socket plus each process's base.
const gwSteadyCores = (deliveriesPerSecond * cost('gateway', 'cpuMicrosecondsPerDelivery')) / 1e6;
const gwStormCores = gwSteadyCores + (joinsPerSecond * cost('gateway', 'cpuMicrosecondsPerJoin')) / 1e6;
const gwCpuNodes = Math.ceil(gwStormCores / (m.gateway.cores * m.gateway.cpuTarget));
const gwSocketBytes = w.concurrentUsers * cost('gateway', 'rssKiBPerSocket') * 1024;
const gwProcessBytes = m.gateway.cores * cost('gateway', 'rssMiBPerProcess') * 1024 ** 2; // one worker per core
const gwMemNodes = Math.ceil(gwSocketBytes / (m.gateway.memoryGiB * GiB * m.gateway.memoryTarget - gwProcessBytes));
const gwSocketNodes = Math.ceil(w.concurrentUsers / m.gateway.maxSocketsPerNode);
const gwNodes = Math.max(gwCpuNodes, gwMemNodes, gwSocketNodes) + m.gateway.spareNodes;

// RabbitMQ: each profile's mailbox is a classic queue (one process on one node); its metadata (the queue
// record and its default-exchange binding) is held by every node of the cluster.
const rmqQueueBytes = w.profiles * cost('rabbitmq', 'bytesPerIdleQueueProcess');
const rmqMetadataPerNode = w.profiles * cost('rabbitmq', 'metadataBytesPerQueue');
const rmqConsumerBytes = w.concurrentUsers * cost('rabbitmq', 'bytesPerConsumer');
const rmqUsable = m.rabbitmq.memoryGiB * GiB * m.rabbitmq.memoryHighWatermark;
const rmqMemNodes = rmqUsable > rmqMetadataPerNode ? Math.ceil((rmqQueueBytes + rmqConsumerBytes) / (rmqUsable - rmqMetadataPerNode)) : Infinity;
const rmqSteadyCores = (deliveriesPerSecond * cost('rabbitmq', 'cpuMicrosecondsPerPersistentMessage')) / 1e6;
const rmqStormCores = rmqSteadyCores + (joinsPerSecond * (cost('rabbitmq', 'cpuMicrosecondsPerRedeclare') + cost('rabbitmq', 'cpuMicrosecondsPerConsume'))) / 1e6;
const rmqCpuNodes = Math.ceil(rmqStormCores / (m.rabbitmq.cores * m.rabbitmq.cpuTarget));
const rmqNodes = Math.max(rmqMemNodes, rmqCpuNodes, m.rabbitmq.minClusterNodes);

// What replaces one cluster when the metadata does not fit: profiles sharded by id over independent
// clusters, each holding at most `maxMetadataShare` of a node's usable memory as metadata.
const shards = Math.max(1, Math.ceil(rmqMetadataPerNode / (rmqUsable * m.rabbitmq.maxMetadataShare)));
const shardMetadata = rmqMetadataPerNode / shards;
const shardMemNodes = Math.ceil((rmqQueueBytes + rmqConsumerBytes) / shards / (rmqUsable - shardMetadata));
const shardNodes = Math.max(shardMemNodes, Math.ceil(rmqCpuNodes / shards), m.rabbitmq.minClusterNodes);

// Redis: one subscription per watched status variable per gateway process, one hash field per variable.
const gwProcesses = gwNodes * m.gateway.cores;
const redisSubscriptions = Math.min(w.controlBindings, w.statusVariables * gwProcesses);
const redisBytes = redisSubscriptions * cost('redis', 'bytesPerSubscribedChannel') + w.statusVariables * cost('redis', 'bytesPerStatusVariable');

const rows = [
  ['Load', `${int(w.concurrentUsers)} sockets, ${int(w.profiles)} profiles`, `${int(deliveriesPerSecond)} deliveries/s; storm ${int(joinsPerSecond)} joins/s`, ''],
  ['Gateway CPU', `${cost('gateway', 'cpuMicrosecondsPerDelivery')} µs/delivery, ${cost('gateway', 'cpuMicrosecondsPerJoin')} µs/join`, `${cores(gwSteadyCores)} steady, ${cores(gwStormCores)} in a storm`, `${gwCpuNodes} (at ${m.gateway.cpuTarget * 100} % of ${m.gateway.cores} cores)`],
  ['Gateway memory', `${cost('gateway', 'rssKiBPerSocket')} KiB/socket + ${cost('gateway', 'rssMiBPerProcess')} MiB/process`, `${gib(gwSocketBytes)} sockets + ${gib(gwProcessBytes)} per node`, `${gwMemNodes} (${m.gateway.memoryGiB} GiB each)`],
  ['Gateway sockets per node', `at most ${int(m.gateway.maxSocketsPerNode)} (what one node's loss sends back through joins)`, `${int(w.concurrentUsers)} sockets`, String(gwSocketNodes)],
  ['**Gateway nodes**', `largest of the three + ${m.gateway.spareNodes} spare`, `${gwProcesses} worker processes`, `**${gwNodes}**`],
  ['RabbitMQ queue memory', `${int(cost('rabbitmq', 'bytesPerIdleQueueProcess'))} B/queue + ${int(cost('rabbitmq', 'bytesPerConsumer'))} B/consumer`, `${gib(rmqQueueBytes)} queues + ${gib(rmqConsumerBytes)} consumers, spread`, ''],
  ['RabbitMQ metadata', `${int(cost('rabbitmq', 'metadataBytesPerQueue'))} B/queue on every node`, `${gib(rmqMetadataPerNode)} on each node`, ''],
  ['RabbitMQ memory nodes', `${m.rabbitmq.memoryGiB} GiB × ${m.rabbitmq.memoryHighWatermark} watermark = ${gib(rmqUsable)} usable`, rmqMemNodes === Infinity ? 'metadata alone passes a node' : `${gib(rmqUsable - rmqMetadataPerNode)} left per node for queues`, rmqMemNodes === Infinity ? '**does not fit**' : String(rmqMemNodes)],
  ['RabbitMQ CPU', `${cost('rabbitmq', 'cpuMicrosecondsPerPersistentMessage')} µs/persistent message, ${int(cost('rabbitmq', 'cpuMicrosecondsPerRedeclare') + cost('rabbitmq', 'cpuMicrosecondsPerConsume'))} µs/join`, `${cores(rmqSteadyCores)} steady, ${cores(rmqStormCores)} in a storm`, `${rmqCpuNodes} (at ${m.rabbitmq.cpuTarget * 100} % of ${m.rabbitmq.cores} cores)`],
  ['**RabbitMQ nodes**', `largest of the two, at least ${m.rabbitmq.minClusterNodes}`, '', rmqNodes === Infinity ? '**does not fit**' : `**${rmqNodes}**`],
  ['**RabbitMQ, sharded**', `profiles split by id over clusters, metadata ≤ ${m.rabbitmq.maxMetadataShare * 100} % of a node`, `${shards} clusters of ${shardNodes} nodes, ${gib(shardMetadata)} metadata per node`, `**${shards * shardNodes}**`],
  ['**Redis**', `${cost('redis', 'bytesPerSubscribedChannel')} B/subscription, ${cost('redis', 'bytesPerStatusVariable')} B/status variable`, `${int(redisSubscriptions)} subscriptions, ${int(w.statusVariables)} variables: ${(redisBytes / 1024 ** 2).toFixed(0)} MiB`, '**1 primary + 1 replica**'],
];

const table = ['| part | unit cost or rule | need | nodes |', '| --- | --- | --- | ---: |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
console.log(table);
