import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AmqpBroker, type AmqpBrokerOptions } from '../../src/backends/rabbitmq/amqp-broker.js';
import { notificationsOf } from '../../src/backends/rabbitmq/relay-protocol.js';
import { relayExchange, relayQueueName } from '../../src/backends/rabbitmq/topology.js';
import type { BackendState } from '../../src/core/backend-state.js';
import type { ProfileId } from '../../src/core/ids.js';
import type { DeliveryVerdict } from '../../src/core/notification-broker.js';
import { silentLogger } from '../../src/core/logger.js';
import { uniqueId } from '../helpers/gateway.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Races in the relay between gateway nodes (per-(node, profile) relay queues), on the real RabbitMQ. Each
 * node is an AmqpBroker in this process; its delivery handler stands for the node's sockets of the profile,
 * so what a handler records is what the profile's clients on that node see. Markers from a node that does
 * not exist are what a node joining and leaving at once would put in the mailbox.
 */
describe('RabbitMQ relay races', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const notification = (id: string) => Buffer.from(JSON.stringify({ data: { type: 'X', id } }));
  const idOf = (body: Buffer) => (JSON.parse(body.toString()) as { data: { id: string } }).data.id;
  const marker = (kind: 'hello' | 'bye', node: string) => ({ headers: { 'x-switchboard-marker': kind, 'x-switchboard-node': node } });
  const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

  /** A profile's mailbox and dead-letter topology, with a backend connection; all deleted after the tests. */
  async function profileFixture(tag: string) {
    const profile = uniqueId(`relay-${tag}`) as ProfileId;
    const mailbox = `message_to_user.${profile}`;
    const deadLetterQueue = uniqueId(`switchboard.test.dead_letter.relay-${tag}`);
    const backend = await plainAmqp();
    const nodeIds: string[] = [];
    cleanups.push(async () => {
      for (const queue of [mailbox, deadLetterQueue, `${deadLetterQueue}.log`, ...nodeIds.map((n) => relayQueueName(n, profile))]) {
        await backend.channel.deleteQueue(queue);
      }
      await backend.channel.deleteExchange(deadLetterQueue);
      await backend.close();
    });
    const send = (body: Buffer, options: object = {}) =>
      new Promise<void>((resolve, reject) =>
        backend.channel.sendToQueue(mailbox, body, { persistent: true, ...options }, (err: unknown) => (err ? reject(err) : resolve())),
      );
    /** A gateway node; `handler` stands for its sockets of the profile (default: every write succeeds). */
    async function node(name: string, prefetch = 500, overrides: Partial<AmqpBrokerOptions> = {}) {
      const nodeId = uniqueId(`relay-${tag}-${name}`);
      nodeIds.push(nodeId);
      const broker = new AmqpBroker({
        url: amqpUrl,
        nodeId,
        queuePrefix: 'message_to_user.',
        deadLetterQueue,
        retention: testRetention,
        nodeQueueExpiresMs: 60_000,
        prefetch,
        log: silentLogger,
        ...overrides,
      });
      await broker.start();
      cleanups.push(() => broker.close());
      return { broker, nodeId };
    }
    return { profile, mailbox, backend, send, node };
  }

  /** Records what a node's sockets receive; `until` resolves once a given message arrived. */
  function sockets(write: (body: Buffer) => DeliveryVerdict | Promise<DeliveryVerdict> = () => 'ack') {
    const seen: string[] = [];
    const waiting = new Map<string, () => void>();
    return {
      seen,
      handler: (body: Buffer) => {
        const id = idOf(body);
        seen.push(id);
        waiting.get(id)?.();
        return write(body);
      },
      until: (id: string) => (seen.includes(id) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(id, resolve))),
    };
  }

  it('keeps publish order when a peer joins and leaves while the active node is still setting up its relay queue', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('order');
    const { broker } = await fixture.node('a');
    const clients = sockets();
    await broker.subscribe(fixture.profile, clients.handler);
    // The node is alone (direct). A peer joins and leaves at once while messages keep flowing: the node
    // relays m1 and m2, setting up its relay queue first, and may go direct again only behind them.
    const peer = uniqueId('peer');
    await fixture.send(Buffer.alloc(0), marker('hello', peer));
    await fixture.send(notification('m1'));
    await fixture.send(notification('m2'));
    await fixture.send(Buffer.alloc(0), marker('bye', peer));
    const total = 300;
    for (let i = 3; i <= total; i++) await fixture.send(notification(`m${i}`));
    await clients.until(`m${total}`);
    await fixture.send(notification('sentinel'));
    await clients.until('sentinel');
    assert.deepEqual(clients.seen, [...ids(1, total), 'sentinel'], 'every message once, in publish order');
  });

  it('keeps delivering after the link is rebuilt because its relay queue consumer was cancelled', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('relink');
    let ownQueueConsumed: () => void = () => {};
    const consumed = new Promise<void>((resolve) => (ownQueueConsumed = resolve));
    const log = {
      ...silentLogger,
      debug: (_fields: object | string, msg?: string) => {
        if (msg === 'relay queue consumed') ownQueueConsumed();
      },
    };
    const { broker, nodeId } = await fixture.node('a', 500, { log });
    const clients = sockets();
    await broker.subscribe(fixture.profile, clients.handler);
    await fixture.send(Buffer.alloc(0), marker('hello', uniqueId('peer')));
    await fixture.send(notification('m1'));
    await clients.until('m1');
    // With another holder, the node sets up its own relay queue (for a node that would take over): it is
    // consumed.
    await consumed;
    const rebuilt = new Promise<void>((resolve) => {
      const states: BackendState[] = [];
      const stop = broker.onStateChange((state) => {
        states.push(state);
        if (state === 'up' && states.includes('down')) {
          stop();
          resolve();
        }
      });
    });
    // An operator deletes the queue: RabbitMQ cancels its consumer and the node rebuilds its link.
    await fixture.backend.channel.deleteQueue(relayQueueName(nodeId, fixture.profile));
    await rebuilt;
    await fixture.send(notification('m2'));
    await fixture.send(notification('m3'));
    await clients.until('m3');
    // m1's mailbox acknowledgement may not have gone out before the rebuild (at least once across a failure).
    assert.deepEqual([...new Set(clients.seen)], ['m1', 'm2', 'm3'], 'the profile is served again after the rebuild, in order');
    assert.equal((await fixture.backend.channel.checkQueue(fixture.mailbox)).consumerCount, 1, 'the old link left no consumer behind');
  });

  it('a node cut off from the broker gets, once back, what was published while it was away', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('cut');
    // Node A counts the mailbox's consumers at every relayed message (no 5 s interval), and tells when.
    const counts: Array<(consumers: number) => void> = [];
    const countingLog = {
      ...silentLogger,
      debug: (fields: object | string, msg?: string) => {
        if (msg === 'mailbox consumer count') for (const seen of counts.splice(0)) seen((fields as { consumers: number }).consumers);
      },
    };
    const nextCount = () => new Promise<number>((resolve) => counts.push(resolve));
    const a = await fixture.node('a', 500, { peerCheckIntervalMs: 0, log: countingLog });
    // Node B reaches RabbitMQ through a proxy the test can cut.
    const broker = new URL(amqpUrl);
    const proxy = await startTcpProxy(Number(broker.port || 5672), broker.hostname);
    cleanups.push(() => proxy.close());
    const viaProxy = new URL(amqpUrl);
    viaProxy.port = String(proxy.port);
    const b = await fixture.node('b', 500, { url: viaProxy.toString() });
    const onA = sockets();
    const onB = sockets();
    await a.broker.subscribe(fixture.profile, onA.handler);
    await b.broker.subscribe(fixture.profile, onB.handler);
    await fixture.send(notification('m1'));
    await Promise.all([onA.until('m1'), onB.until('m1')]);

    const nextState = (broker: AmqpBroker, wanted: BackendState) =>
      new Promise<void>((resolve) => {
        const stop = broker.onStateChange((state) => {
          if (state === wanted) {
            stop();
            resolve();
          }
        });
      });
    const down = nextState(b.broker, 'down');
    await proxy.cut();
    await down;
    // A counts the consumers at each message it relays: B is not among them while it is cut off. Messages
    // published after those counts must still reach B once it is back.
    for (const id of ['m2', 'm3']) {
      const counted = nextCount();
      await fixture.send(notification(id));
      assert.equal(await counted, 1, 'the cut node is missing from the count');
      await onA.until(id);
    }
    await fixture.send(notification('m4'));
    await onA.until('m4');

    const up = nextState(b.broker, 'up');
    await proxy.restore();
    await up;
    await fixture.send(notification('m5'));
    await Promise.all([onA.until('m5'), onB.until('m5')]);
    assert.deepEqual(onA.seen, ['m1', 'm2', 'm3', 'm4', 'm5']);
    // m1's acknowledgement from B may not have gone out before the cut (at least once across a failure).
    assert.deepEqual([...new Set(onB.seen)], ['m1', 'm2', 'm3', 'm4', 'm5'], 'B, joined all along, got what was published while it was away, in order');
  });

  it('a relaying node whose last socket leaves does not hand the other nodes copies they already have', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('leave');
    // Node A's socket reads slowly: its writes stay pending, and with a prefetch of 5 the rest of its
    // copies wait in its relay queue. When the socket leaves, the pending writes fail.
    const pendingWrites: Array<(verdict: DeliveryVerdict) => void> = [];
    const slow = sockets(() => new Promise<DeliveryVerdict>((resolve) => pendingWrites.push(resolve)));
    const a = await fixture.node('a', 5);
    const subscriptionA = await a.broker.subscribe(fixture.profile, slow.handler);
    const b = await fixture.node('b');
    const clientsB = sockets();
    await b.broker.subscribe(fixture.profile, clientsB.handler); // A stays active and relays to both
    const count = 20;
    for (let i = 1; i <= count; i++) await fixture.send(notification(`m${i}`));
    await clientsB.until(`m${count}`);
    await slow.until('m5');
    const leaving = subscriptionA.unsubscribe();
    for (const fail of pendingWrites) fail('requeue');
    await leaving;
    // B is now the active node. Anything A put back in the mailbox comes before the sentinel.
    await fixture.send(notification('sentinel'));
    await clientsB.until('sentinel');
    assert.deepEqual(clientsB.seen, [...ids(1, count), 'sentinel'], "B's sockets get every message once, in order");
  });

  it('leaves the profile to another node while it cannot set up its relay queue, instead of spinning on it', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('refused');
    // A window of 10: A's sockets may lag by five local-first messages (half the window); the sixth must go
    // through A's relay queue. (A window the stalled messages fill would leave the messages A hands back
    // ready in the mailbox while its consumer is cancelled, which RabbitMQ 3.10 mishandles:
    // rabbitmq-server#5460, a crashed queue and nacked publishes.)
    const a = await fixture.node('a', 10);
    // Another connection holds an exclusive queue with the name of A's relay queue: RabbitMQ refuses A
    // every declare of it, as it would without permissions on switchboard.relay.*.
    await fixture.backend.channel.assertQueue(relayQueueName(a.nodeId, fixture.profile), { exclusive: true });
    let release: () => void = () => {};
    const released = new Promise<DeliveryVerdict>((resolve) => (release = () => resolve('ack')));
    const clientsA = sockets(() => released); // A's sockets stop reading
    await a.broker.subscribe(fixture.profile, clientsA.handler); // alone: direct, needs no relay queue
    const b = await fixture.node('b');
    const clientsB = sockets();
    await b.broker.subscribe(fixture.profile, clientsB.handler); // its hello makes A deliver local first
    for (let i = 1; i <= 10; i++) await fixture.send(notification(`m${i}`));
    await Promise.all(ids(1, 10).map((id) => clientsB.until(id)));
    // A relay that fails puts the message back in the mailbox, which may reorder it (README: at least
    // once over order, on failure only); what matters is that the profile is served at all.
    assert.deepEqual([...new Set(clientsB.seen)].sort(), ids(1, 10).sort(), "B's sockets get every message while A cannot relay");
    assert.deepEqual(clientsA.seen, ids(1, 5), 'A wrote m1-m5 local first; it could not take the rest without its relay queue');
    release();
  });

  it('hands back, in order and once, the copies an earlier run of a node left in its relay queue', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('handback');
    const b = await fixture.node('b');
    const clientsB = sockets();
    await b.broker.subscribe(fixture.profile, clientsB.handler); // alone: B delivers straight from the mailbox
    const a = await fixture.node('a');
    // An earlier run of A (other relay queue arguments) left copies it had relayed while it knew no
    // other holder: A's next join hands them back to the mailbox before declaring the queue afresh.
    const leftover = relayQueueName(a.nodeId, fixture.profile);
    await fixture.backend.channel.assertQueue(leftover, { durable: true, arguments: { 'x-expires': 60_000 } });
    // Relayed as A relays: through the relay exchange, routed by the mailbox name.
    await fixture.backend.channel.bindQueue(leftover, 'switchboard.relay', fixture.mailbox);
    const count = 600; // more than one prefetch window of the hand-back
    for (let i = 1; i <= count; i++) {
      fixture.backend.channel.publish('switchboard.relay', fixture.mailbox, notification(`m${i}`), {
        persistent: true,
        headers: { 'x-switchboard-relay': `earlier-run:${i}`, 'x-switchboard-node': a.nodeId },
      });
    }
    await fixture.backend.channel.waitForConfirms();
    await fixture.backend.channel.unbindQueue(leftover, 'switchboard.relay', fixture.mailbox);
    await a.broker.subscribe(fixture.profile, sockets().handler);
    await clientsB.until(`m${count}`);
    await fixture.send(notification('sentinel'));
    await clientsB.until('sentinel');
    assert.deepEqual(clientsB.seen, [...ids(1, count), 'sentinel'], "B's sockets get each handed-back message once, in order");
  });

  it('an active node delivering local first gives back what its ack-mode socket did not take, and not what no socket could take', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('local');
    // Resolves when a node's sockets got m3 a second time.
    const m3Again = () => {
      let seen = 0;
      let resolve: () => void = () => {};
      const again = new Promise<void>((r) => (resolve = r));
      return { again, saw: (body: Buffer) => idOf(body) === 'm3' && ++seen === 2 && resolve() };
    };
    const [onA, onB] = [m3Again(), m3Again()];
    const a = await fixture.node('a');
    let givenBack = false;
    const clientsA = sockets((body) => {
      onA.saw(body);
      const id = idOf(body);
      // m3: an ack-mode client dropped before acknowledging it; m6: every socket of A died before writing it.
      if (id === 'm3' && !givenBack) return ((givenBack = true), 'redeliver');
      if (id === 'm6') return 'requeue';
      return 'ack';
    });
    await a.broker.subscribe(fixture.profile, clientsA.handler); // alone: direct
    const b = await fixture.node('b');
    const clientsB = sockets((body) => (onB.saw(body), 'ack'));
    await b.broker.subscribe(fixture.profile, clientsB.handler); // its hello: A writes local first and copies to B
    for (let i = 1; i <= 10; i++) await fixture.send(notification(`m${i}`));
    await Promise.all([onA.again, onB.again]);
    await fixture.send(notification('sentinel'));
    await Promise.all([clientsA.until('sentinel'), clientsB.until('sentinel')]);
    const firstTimes = (seen: string[]) => seen.filter((id, i) => seen.indexOf(id) === i);
    const twice = (seen: string[]) => seen.filter((id, i) => seen.indexOf(id) !== i);
    for (const clients of [clientsA, clientsB]) {
      assert.deepEqual(firstTimes(clients.seen), [...ids(1, 10), 'sentinel'], 'first times in publish order');
    }
    // m3 went back to the mailbox: both nodes get it again (at least once). m6 had reached B, so it is not
    // sent again to anyone.
    assert.deepEqual(twice(clientsA.seen), ['m3']);
    assert.deepEqual(twice(clientsB.seen), ['m3']);
  });

  it('relays a burst as batch copies: every message once and in order on both nodes, a batch given back whole', { timeout: 60_000 }, async () => {
    const fixture = await profileFixture('batch');
    // Node A alone, then B's hello: A writes to its own sockets from the mailbox and copies to B's relay
    // queue. The burst meets one copy awaiting its confirm at a time, so copies carry several messages.
    const a = await fixture.node('a');
    const clientsA = sockets();
    await a.broker.subscribe(fixture.profile, clientsA.handler);
    const b = await fixture.node('b');
    let givenBack = false;
    const clientsB = sockets((body) => {
      // m150 is not taken the first time (an ack-mode client dropped): its whole batch goes back.
      if (idOf(body) === 'm150' && !givenBack) return ((givenBack = true), 'redeliver');
      return 'ack';
    });
    await b.broker.subscribe(fixture.profile, clientsB.handler);
    const total = 300;
    await Promise.all(ids(1, total).map((id) => fixture.send(notification(id))));
    await Promise.all([clientsA.until(`m${total}`), clientsB.until(`m${total}`)]);
    await fixture.send(notification('sentinel'));
    await Promise.all([clientsA.until('sentinel'), clientsB.until('sentinel')]);
    const firstTimes = (seen: string[]) => seen.filter((id, i) => seen.indexOf(id) === i);
    for (const clients of [clientsA, clientsB]) {
      assert.deepEqual(firstTimes(clients.seen), [...ids(1, total), 'sentinel'], 'every message reached the sockets, first times in publish order');
    }
    // The batch holding m150 came to B again, whole and in order (at least once); nothing else twice.
    const seenTwice = clientsB.seen.filter((id, i) => clientsB.seen.indexOf(id) !== i);
    assert.ok(seenTwice.includes('m150') && seenTwice.length > 1, `m150 travelled in a batch copy (given back: ${seenTwice.join(',')})`);
    assert.deepEqual(seenTwice, [...seenTwice].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1))), 'the batch given back came again in order');
    const againAt = clientsB.seen.lastIndexOf(seenTwice[0]!);
    assert.deepEqual(clientsB.seen.slice(againAt, againAt + seenTwice.length), seenTwice, 'and in one run');
    assert.deepEqual(clientsA.seen.filter((id, i) => clientsA.seen.indexOf(id) !== i), seenTwice, 'the batch given back reached A again too, and nothing else');
  });
});
