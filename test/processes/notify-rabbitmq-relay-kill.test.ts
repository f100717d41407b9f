import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mailboxQueueName, relayQueueName } from '../../src/backends/rabbitmq/topology.js';
import { uniqueId } from '../helpers/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { join, TestClient } from '../helpers/ws-client.js';

/**
 * The active node of a relayed profile dies (SIGKILL: no bye, no give-back, its broker connection simply
 * drops) while messages flow (issue 16, "Must show" 2). The profile's other node takes the mailbox over;
 * its socket must get every message at least once. Duplicates are allowed (at least once) and counted.
 */
describe('relayed profile: the active node is killed mid-stream', () => {
  const run = uniqueId('rk');
  const deadLetterQueue = `switchboard.test.dead_letter.${run}`;
  const profile = `kill-${run}`;
  const token = `tok-kill-${run}`;
  let backend: Awaited<ReturnType<typeof plainAmqp>>;
  const processes: GatewayProcess[] = [];
  const clients: TestClient[] = [];
  const config = {
    amqpUrl,
    tokens: { kind: 'static', tokens: { [token]: profile } },
    notify: { deadLetterQueue, retention: testRetention, nodeQueueExpiresMs: 10_000 },
  };
  const joinOn = async (gateway: GatewayProcess) => {
    const client = await TestClient.connect(gateway.wsUrl);
    clients.push(client);
    const reply = await client.request(join(token));
    assert.equal(reply.status, 200, JSON.stringify(reply));
    return client;
  };
  const message = (i: number) => Buffer.from(JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `m${i}`, command_status: 2 } }));

  before(async () => {
    backend = await plainAmqp({ noDelay: true });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(processes.map((p) => p.stop()));
    // The killed node could not delete its relay queue; it would otherwise wait for x-expires.
    for (const p of processes) await backend.channel.deleteQueue(relayQueueName(p.nodeId, profile)).catch(() => {});
    // The profile's mailbox too: it would otherwise wait for its x-expires on the shared broker.
    await backend.channel.deleteQueue(mailboxQueueName('message_to_user.', profile)).catch(() => {});
    await backend.channel.deleteQueue(deadLetterQueue).catch(() => {});
    await backend.channel.deleteQueue(`${deadLetterQueue}.log`).catch(() => {});
    await backend.channel.deleteExchange(deadLetterQueue).catch(() => {});
    await backend.close();
  });

  it("loses nothing on the surviving node's socket", { timeout: 120_000 }, async (t) => {
    const [active, survivor] = await Promise.all([startGatewayProcess(config), startGatewayProcess(config)]);
    processes.push(active, survivor);
    // Joined first, the first node is the mailbox's active consumer; the second node's join makes it relay.
    const onActive = await joinOn(active);
    const onSurvivor = await joinOn(survivor);

    const count = 3_000;
    // The publisher stays at most `window` messages ahead of the survivor's socket, so the kill lands
    // mid-stream: copies in flight in the mailbox, in both relay queues and unconfirmed at the active node.
    const window = 300;
    const killAt = 1_000;
    let published = 0;
    const publishUpTo = async (n: number) => {
      for (; published < n; published += 1) backend.channel.sendToQueue(`message_to_user.${profile}`, message(published), { persistent: true });
      await backend.channel.waitForConfirms();
    };
    await publishUpTo(window);

    const seen = new Map<string, number>();
    let frames = 0;
    let killedAfter = -1;
    let receivedByActive = 0;
    while (seen.size < count) {
      assert.ok(frames < 3 * count, `bounded: ${frames} frames for ${seen.size} distinct messages`);
      const frame = JSON.parse(await onSurvivor.next(30_000)) as { data?: { id?: string } };
      const id = frame.data?.id;
      assert.ok(id !== undefined && /^m\d+$/.test(id) && Number(id.slice(1)) < count, `a message of the stream, not ${JSON.stringify(frame)}`);
      frames += 1;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (killedAfter < 0 && seen.size >= killAt) {
        receivedByActive = onActive.unread().length;
        killedAfter = seen.size;
        active.child.kill('SIGKILL');
      }
      if (published < count && published - seen.size < window) await publishUpTo(Math.min(count, published + 100));
    }
    const duplicates = frames - seen.size;
    t.diagnostic(`killed after ${killedAfter} messages (the killed node's socket had ${receivedByActive}); ${count} distinct, ${duplicates} duplicates`);
    assert.ok(killedAfter > 0 && killedAfter < count, 'the kill landed mid-stream');
    assert.ok(receivedByActive > 0, "the killed node was delivering to its socket too (the profile was relayed)");
    for (let i = 0; i < count; i += 1) assert.ok(seen.has(`m${i}`), `m${i} reached the survivor`);

    // Steady again: a message published now arrives exactly once, after nothing else of the stream.
    const sentinel = Buffer.from(JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: 'sentinel', command_status: 2 } }));
    backend.channel.sendToQueue(`message_to_user.${profile}`, sentinel, { persistent: true });
    await backend.channel.waitForConfirms();
    let late = 0;
    for (;;) {
      const id = (JSON.parse(await onSurvivor.next(30_000)) as { data: { id: string } }).data.id;
      if (id === 'sentinel') break;
      assert.ok(seen.has(id), `only duplicates of the stream before the sentinel, not ${id}`);
      late += 1;
      assert.ok(late <= count, 'bounded');
    }
    // Copies the killed node relayed and left in its own (abandoned) queue may still come back once more
    // when they expire there (docs/rabbitmq-design.md, "Crashes"): at least once, so not asserted away.
    t.diagnostic(`${late} more duplicates before the sentinel`);
  });
});
