import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mailboxQueueArguments } from '../../src/backends/rabbitmq/topology.js';
import { startGateway, uniqueId } from '../helpers/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { amqpUrl, closeConnections, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { join, leave, TestClient } from '../helpers/ws-client.js';

/**
 * The notification channel on the real RabbitMQ, as a backend and clients see it (issue 2, "Must show"
 * 1-4 and dead letters). Every test uses its own profiles and dead-letter topology, so runs sharing the
 * broker do not see each other.
 */
describe('notification channel on RabbitMQ', () => {
  const run = uniqueId('rq');
  const deadLetterQueue = `switchboard.test.dead_letter.${run}`;
  // Tests that assert on dead-letter log lines get their own dead-letter topology, so no other gateway
  // of this file consumes their log copies.
  const deadLetterQueues = [deadLetterQueue, `${deadLetterQueue}.retention`, `${deadLetterQueue}.invalid`];
  let backend: Awaited<ReturnType<typeof plainAmqp>>;
  const processes: GatewayProcess[] = [];
  const clients: TestClient[] = [];

  const profile = (name: string) => `${name}-${run}`;
  const tokenOf = (name: string) => `tok-${name}-${run}`;
  const tokens = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'].map((n) => [tokenOf(n), profile(n)]));
  const config = (extra: Record<string, unknown> = {}) => ({
    amqpUrl,
    tokens: { kind: 'static', tokens },
    apiKeys: [{ id: 'publisher', key: 'test-publish-key', publish: true }],
    notify: { deadLetterQueue, retention: testRetention },
    ...extra,
  });
  const connect = async (url: string) => {
    const client = await TestClient.connect(url);
    clients.push(client);
    return client;
  };
  const joinAs = async (url: string, name: string) => {
    const client = await connect(url);
    const reply = await client.request(join(tokenOf(name)));
    assert.equal(reply.status, 200, JSON.stringify(reply));
    return client;
  };
  /** What a backend does: a persistent message to the profile's queue on the default exchange. */
  const backendPublish = async (name: string, body: string | Buffer, persistent = true) => {
    backend.channel.sendToQueue(`message_to_user.${profile(name)}`, Buffer.isBuffer(body) ? body : Buffer.from(body), { persistent });
  };
  const message = (i: number, tag = 'm', body = `n${i}`) => JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `${tag}${i}`, command_status: 2, body } });
  const idOf = (frame: string) => (JSON.parse(frame) as { data: { id: string } }).data.id;
  const socketOf = (client: TestClient) => (client.ws as unknown as { _socket: Socket })._socket;

  before(async () => {
    backend = await plainAmqp();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(processes.map((p) => p.stop()));
    for (const queue of deadLetterQueues) {
      await backend.channel.deleteQueue(queue).catch(() => {});
      await backend.channel.deleteQueue(`${queue}.log`).catch(() => {});
      await backend.channel.deleteExchange(queue).catch(() => {});
    }
    await backend.close();
  });

  it('forwards byte for byte what a plain amqplib publisher put on message_to_user.<profile>', async () => {
    const gw = await startGateway(config());
    try {
      const client = await TestClient.connect(gw.wsUrl);
      assert.equal((await client.request(join(tokenOf('a')))).status, 200);
      const status = Buffer.from('{"data":{"type":"X-DPT-CAB-ID","id":"23f7978a-5561-4718-84ca-c38d7db0843c","command_status":2,"body":"Command completed successfully"}}');
      const download = Buffer.from('{"data": {"type": "X-DPT-CAB-REQUEST-ID", "id": "b24b68f6", "data_context": "data-token-context", "output_type": 1, "body": "https://download.example/path?auth=token\\u00e9"}}\n');
      await backendPublish('a', status);
      await backendPublish('a', download);
      await backend.channel.waitForConfirms();
      assert.equal(Buffer.compare(Buffer.from(await client.next()), status), 0);
      assert.equal(Buffer.compare(Buffer.from(await client.next()), download), 0);
      await client.close();
    } finally {
      await gw.close();
    }
  });

  it('fans out across two gateway processes: every socket of a profile gets every message once, in order', async () => {
    const [one, two] = await Promise.all([startGatewayProcess(config()), startGatewayProcess(config())]);
    processes.push(one, two);
    const a1 = await joinAs(one.wsUrl, 'b');
    const a2 = await joinAs(two.wsUrl, 'b');
    const other = await joinAs(one.wsUrl, 'c');
    const count = 1_000;
    for (let i = 0; i < count; i += 1) await backendPublish('b', message(i));
    await backend.channel.waitForConfirms();
    for (const socket of [a1, a2]) {
      for (let i = 0; i < count; i += 1) assert.equal(JSON.parse(await socket.next()).data.id, `m${i}`);
    }
    // A sentinel published after the stream must be the very next frame: nothing was duplicated.
    await backendPublish('b', message(0, 'sentinel'));
    await backendPublish('c', message(0, 'only-c'));
    await backend.channel.waitForConfirms();
    assert.equal(JSON.parse(await a1.next()).data.id, 'sentinel0');
    assert.equal(JSON.parse(await a2.next()).data.id, 'sentinel0');
    assert.equal(JSON.parse(await other.next()).data.id, 'only-c0', "the other profile's socket got none of the stream");
  });

  it('keeps order and exactly-once when a second node joins and leaves a profile mid-stream', async () => {
    const [one, two] = await Promise.all([startGatewayProcess(config()), startGatewayProcess(config())]);
    processes.push(one, two);
    const first = await joinAs(one.wsUrl, 'h');
    const sameNode = await joinAs(one.wsUrl, 'h');
    const count = 1_500;
    // Part one: only node one holds the profile (it delivers straight from the mailbox).
    for (let i = 0; i < 500; i += 1) await backendPublish('h', message(i));
    await backend.channel.waitForConfirms();
    for (let i = 0; i < 250; i += 1) assert.equal(JSON.parse(await first.next()).data.id, `m${i}`);
    // Node two joins while part one is still being delivered; part two is published after its join.
    const late = await joinAs(two.wsUrl, 'h');
    for (let i = 500; i < 1_000; i += 1) await backendPublish('h', message(i));
    await backend.channel.waitForConfirms();
    const lateIds: number[] = [];
    while (lateIds.at(-1) !== 999) lateIds.push(Number(JSON.parse(await late.next()).data.id.slice(1)));
    assert.ok(lateIds[0]! <= 500, `node two got everything published after its join (from m${lateIds[0]})`);
    lateIds.forEach((id, k) => assert.equal(id, lateIds[0]! + k, 'in order, no gaps, no duplicates'));
    // Node two leaves; part three flows to node one alone again.
    assert.equal((await late.request(leave(profile('h')))).status, 200);
    for (let i = 1_000; i < count; i += 1) await backendPublish('h', message(i));
    await backend.channel.waitForConfirms();
    for (const socket of [first, sameNode]) {
      const start = socket === first ? 250 : 0;
      for (let i = start; i < count; i += 1) assert.equal(JSON.parse(await socket.next()).data.id, `m${i}`);
    }
    await backendPublish('h', message(0, 'sentinel'));
    await backend.channel.waitForConfirms();
    assert.equal(JSON.parse(await first.next()).data.id, 'sentinel0', 'no duplicates on node one');
    assert.equal(JSON.parse(await sameNode.next()).data.id, 'sentinel0');
    assert.deepEqual(late.unread(), [], 'nothing after its leave');
  });

  it("keeps delivering a node's other relayed profiles while one profile's only socket there stops reading", async () => {
    // A small window, and no dead-peer detection during the test: the stalled socket stays open.
    const stallConfig = config({ notify: { deadLetterQueue, retention: testRetention, prefetch: 10 }, heartbeatIntervalMs: 600_000 });
    const [one, two] = await Promise.all([startGatewayProcess(stallConfig), startGatewayProcess(stallConfig)]);
    processes.push(one, two);
    // Both nodes hold both profiles (relay mode). Node one joined A ('i') first and relays it; node two
    // joined B ('j') first and relays it.
    const aOnOne = await joinAs(one.wsUrl, 'i');
    const bOnTwo = await joinAs(two.wsUrl, 'j');
    const aOnTwo = await joinAs(two.wsUrl, 'i');
    const bOnOne = await joinAs(one.wsUrl, 'j');
    socketOf(aOnTwo).pause();

    // 800 x 16 KB: far more than kernel buffers take on loopback plus the prefetch of 10, far less than
    // maxBufferedBytes (only the prefetch window can pile up in node two's user-space buffers).
    const aCount = 800;
    const pad = 'x'.repeat(16 * 1024);
    for (let i = 0; i < aCount; i += 1) await backendPublish('i', message(i, 'a', pad));
    await backend.channel.waitForConfirms();
    // Node one got every A message, so every copy for node two is routed and waits behind the stalled socket.
    for (let i = 0; i < aCount; i += 1) assert.equal(idOf(await aOnOne.next()), `a${i}`);

    const bCount = 200;
    for (let i = 0; i < bCount; i += 1) await backendPublish('j', message(i, 'b'));
    await backend.channel.waitForConfirms();
    for (const socket of [bOnTwo, bOnOne]) {
      for (let i = 0; i < bCount; i += 1) assert.equal(idOf(await socket.next()), `b${i}`, 'B is served while A is stalled');
    }
    assert.ok(aOnTwo.frames.length < aCount, `A's socket on node two is still stalled (${aOnTwo.frames.length} frames read)`);

    socketOf(aOnTwo).resume();
    for (let i = 0; i < aCount; i += 1) assert.equal(idOf(await aOnTwo.next()), `a${i}`, 'A gets everything, in order, once it reads again');
    await backendPublish('i', message(0, 'sentinel'));
    await backendPublish('j', message(0, 'sentinel'));
    await backend.channel.waitForConfirms();
    for (const socket of [aOnOne, aOnTwo, bOnOne, bOnTwo]) assert.equal(idOf(await socket.next()), 'sentinel0', 'no duplicates');
  });

  it("keeps delivering a profile to its other node while the active node's only socket of it stops reading", async () => {
    const stallConfig = config({ notify: { deadLetterQueue, retention: testRetention, prefetch: 10 }, heartbeatIntervalMs: 600_000 });
    const [one, two] = await Promise.all([startGatewayProcess(stallConfig), startGatewayProcess(stallConfig)]);
    processes.push(one, two);
    // Node one joined first: it consumes the mailbox and writes to its own socket straight from it.
    const onOne = await joinAs(one.wsUrl, 'l');
    const onTwo = await joinAs(two.wsUrl, 'l');
    socketOf(onOne).pause();
    // As above: far more than the kernel buffers and the windows hold, far less than maxBufferedBytes.
    const count = 800;
    const pad = 'x'.repeat(16 * 1024);
    for (let i = 0; i < count; i += 1) await backendPublish('l', message(i, 'm', pad));
    await backend.channel.waitForConfirms();
    for (let i = 0; i < count; i += 1) assert.equal(idOf(await onTwo.next()), `m${i}`, "node two is served while node one's socket is stalled");
    assert.ok(onOne.frames.length < count, `node one's socket is still stalled (${onOne.frames.length} frames read)`);

    socketOf(onOne).resume();
    for (let i = 0; i < count; i += 1) assert.equal(idOf(await onOne.next()), `m${i}`, 'node one gets everything, in order, once it reads again');
    await backendPublish('l', message(0, 'sentinel'));
    await backend.channel.waitForConfirms();
    for (const socket of [onOne, onTwo]) assert.equal(idOf(await socket.next()), 'sentinel0', 'no duplicates');
  });

  it('hands a profile over to a node whose relay queue still holds copies without letting newer messages overtake them', async () => {
    const stallConfig = config({ notify: { deadLetterQueue, retention: testRetention, prefetch: 10 }, heartbeatIntervalMs: 600_000 });
    const [one, two] = await Promise.all([startGatewayProcess(stallConfig), startGatewayProcess(stallConfig)]);
    processes.push(one, two);
    const onOne = await joinAs(one.wsUrl, 'k'); // node one is the active consumer and relays
    const onTwo = await joinAs(two.wsUrl, 'k');
    socketOf(onTwo).pause();
    const relayed = 400;
    const pad = 'x'.repeat(16 * 1024);
    for (let i = 0; i < relayed; i += 1) await backendPublish('k', message(i, 'm', pad));
    await backend.channel.waitForConfirms();
    for (let i = 0; i < relayed; i += 1) assert.equal(idOf(await onOne.next()), `m${i}`);
    // Node one goes away: node two becomes the active consumer while copies still wait in its relay queue.
    await one.stop();
    const count = 500;
    for (let i = relayed; i < count; i += 1) await backendPublish('k', message(i));
    await backend.channel.waitForConfirms();
    socketOf(onTwo).resume();
    for (let i = 0; i < count; i += 1) assert.equal(idOf(await onTwo.next()), `m${i}`, 'queued copies first, then the newer messages');
    await backendPublish('k', message(0, 'sentinel'));
    await backend.channel.waitForConfirms();
    assert.equal(idOf(await onTwo.next()), 'sentinel0', 'no duplicates');
  });

  it('keeps messages published while nobody is joined and delivers them in order on the next join', async () => {
    const gw = await startGateway(config());
    try {
      const first = await TestClient.connect(gw.wsUrl);
      assert.equal((await first.request(join(tokenOf('d')))).status, 200);
      assert.equal((await first.request(leave(profile('d')))).status, 200);
      await first.close();
      for (let i = 0; i < 100; i += 1) await backendPublish('d', message(i));
      await backend.channel.waitForConfirms();
      const later = await TestClient.connect(gw.wsUrl);
      assert.equal((await later.request(join(tokenOf('d')))).status, 200);
      for (let i = 0; i < 100; i += 1) assert.equal(JSON.parse(await later.next()).data.id, `m${i}`);
      await later.close();
    } finally {
      await gw.close();
    }
  });

  it('applies the retention bound to waiting messages and logs every drop', async () => {
    const ownDeadLetters = deadLetterQueues[1]!;
    const gw = await startGatewayProcess(config({ notify: { deadLetterQueue: ownDeadLetters, retention: { ...testRetention, maxLength: 10 } } }));
    processes.push(gw);
    // A backend declares the profile's queue as the gateway does (README "RabbitMQ topology").
    await backend.channel.assertQueue(`message_to_user.${profile('e')}`, {
      durable: true,
      arguments: mailboxQueueArguments({ ...testRetention, maxLength: 10 }, ownDeadLetters),
    });
    for (let i = 0; i < 15; i += 1) await backendPublish('e', message(i));
    await backend.channel.waitForConfirms();
    const client = await joinAs(gw.wsUrl, 'e');
    for (let i = 5; i < 15; i += 1) assert.equal(JSON.parse(await client.next()).data.id, `m${i}`, 'the oldest five were dropped');
    for (let n = 1; n <= 5; n += 1) {
      await gw.waitForLog((l) => l.msg === 'retention policy dropped a waiting message' && l.profileId === profile('e') && l.reason === 'maxlen' && n <= countDrops(gw));
    }
    assert.equal(countDrops(gw), 5);
    function countDrops(p: GatewayProcess) {
      return p.logs.filter((l) => l.msg === 'retention policy dropped a waiting message' && l.profileId === profile('e')).length;
    }
  });

  it('dead-letters queue messages that are not notifications, logs them, and forwards the rest', async () => {
    const ownDeadLetters = deadLetterQueues[2]!;
    const gw = await startGatewayProcess(config({ notify: { deadLetterQueue: ownDeadLetters, retention: testRetention } }));
    processes.push(gw);
    const client = await joinAs(gw.wsUrl, 'f');
    await backendPublish('f', 'not json at all');
    await backendPublish('f', '{"data":{"type":"X-DPT-CAB-ID"}}');
    await backendPublish('f', message(1, 'valid'));
    await backend.channel.waitForConfirms();
    assert.equal(JSON.parse(await client.next()).data.id, 'valid1');
    await gw.waitForLog((l) => l.msg === 'message dead-lettered: not a valid notification' && l.reason === 'not JSON');
    await gw.waitForLog((l) => l.msg === 'message dead-lettered: not a valid notification' && l.reason === 'no string "data.id"');
    // The node that consumes the dead-letter log logged both: they went through the dead-letter exchange.
    const routed = () => gw.logs.filter((l) => l.msg === 'message dead-lettered' && l.profileId === profile('f') && l.reason === 'rejected').length;
    await gw.waitForLog(() => routed() >= 2);
    const dead: string[] = [];
    for (let got = await backend.channel.get(ownDeadLetters, { noAck: true }); got; got = await backend.channel.get(ownDeadLetters, { noAck: true })) {
      dead.push(got.content.toString());
    }
    assert.deepEqual(dead, ['not json at all', '{"data":{"type":"X-DPT-CAB-ID"}}'], 'kept for a person to inspect');
  });

  it('recovers by itself when its broker connection is cut mid-stream and delivers every message at least once', async () => {
    const nodeId = `cut-${run}`;
    const gw = await startGateway(config({ nodeId }));
    const states: string[] = [];
    const waitForState = (wanted: string) =>
      new Promise<void>((resolve) => {
        if (states.includes(wanted)) return resolve();
        const stop = gw.gateway.broker.onStateChange((s) => s === wanted && (stop(), resolve()));
      });
    gw.gateway.broker.onStateChange((s) => states.push(s));
    try {
      const client = await TestClient.connect(gw.wsUrl);
      assert.equal((await client.request(join(tokenOf('g')))).status, 200);
      const half = 1_000;
      const seen = new Set<string>();
      for (let i = 0; i < half; i += 1) await backendPublish('g', message(i));
      await backend.channel.waitForConfirms();
      while (seen.size < 300) seen.add(JSON.parse(await client.next()).data.id);
      assert.ok((await closeConnections(`switchboard ${nodeId}`)) >= 1, 'the gateway connection was found and closed');
      await waitForState('down');
      // The second half is published while the gateway is disconnected.
      for (let i = half; i < 2 * half; i += 1) await backendPublish('g', message(i));
      await backend.channel.waitForConfirms();
      await waitForState('up');
      while (seen.size < 2 * half) seen.add(JSON.parse(await client.next(30_000)).data.id);
      for (let i = 0; i < 2 * half; i += 1) assert.ok(seen.has(`m${i}`), `m${i} delivered`);
      assert.deepEqual(states.slice(0, 2), ['down', 'up'], 'it went down and came back by itself');
      assert.equal((await fetch(`${gw.url}/health`)).status, 200);
      await client.close();
    } finally {
      await gw.close();
    }
  });

  it('answers joins with 503 and /health with 503 while the broker is unreachable', async () => {
    const gw = await startGateway(config({ amqpUrl: 'amqp://guest:guest@127.0.0.1:1', amqpStartTimeoutMs: 300 }));
    try {
      const health = await fetch(`${gw.url}/health`);
      assert.equal(health.status, 503);
      assert.notEqual((await health.json()).backends.broker.state, 'up');
      const client = await TestClient.connect(gw.wsUrl);
      const reply = await client.request(join(tokenOf('a'), 'j'));
      assert.deepEqual(reply, { correlationId: 'j', status: 503, data: { message: 'The message broker is unavailable; try again.' } });
      await client.close();
    } finally {
      await gw.close();
    }
  });
});
