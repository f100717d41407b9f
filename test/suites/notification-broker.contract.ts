import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ProfileId } from '../../src/core/ids.js';
import type { BrokerSubscription, DeliveryVerdict, NotificationBroker } from '../../src/core/notification-broker.js';
import { uniqueId } from '../helpers/gateway.js';

/** Retention and flow settings of one node; each defaults to far more than a test publishes or waits. */
export interface NodeOptions {
  maxLength?: number;
  messageTtlMs?: number;
  queueExpiresMs?: number;
  prefetch?: number;
}

export interface BrokerFixture {
  /** Every node made by one fixture shares one message store when `shared` (RabbitMQ), none otherwise. */
  readonly shared: boolean;
  /** A started node with the given retention and prefetch (NodeOptions). */
  node(options?: NodeOptions): Promise<NotificationBroker>;
  /** Resolves with the bodies dead-lettered for the profile once at least `count` are there (rejects after a while). */
  deadLetters(profile: ProfileId, count: number): Promise<string[]>;
  /**
   * Lets time pass for `node` until `count` messages waiting for the profile are older than the node's
   * message TTL: its injected clock moves on (memory), or the broker is seen expiring them (RabbitMQ).
   */
  outliveMessageTtl(node: NotificationBroker, profile: ProfileId, count: number): Promise<void>;
  /** Lets time pass for `node` until the profile, nobody subscribed, has been abandoned past its queue expiry. */
  outliveQueueExpiry(node: NotificationBroker, profile: ProfileId): Promise<void>;
  /** Resolves once the nodes logged at least `count` retention drops for the profile, with how many they logged. */
  retentionDrops(profile: ProfileId, count: number): Promise<number>;
  /** Closes the nodes and removes what the tests left on the broker. */
  cleanup(): Promise<void>;
}

const notification = (id: string) => Buffer.from(JSON.stringify({ data: { type: 'X', id } }));
const idOf = (body: Buffer) => (JSON.parse(body.toString()) as { data: { id: string } }).data.id;
const byNumber = (a: string, b: string) => Number(a.slice(1)) - Number(b.slice(1));
const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

/**
 * What one node's sockets of a profile receive. `write` decides each verdict (default: written, 'ack');
 * `until(n)` resolves once n messages arrived, with no sleeping.
 */
class Sockets {
  readonly seen: string[] = [];
  private waiters: Array<{ count: number; resolve: () => void }> = [];
  constructor(private readonly write: (id: string) => DeliveryVerdict | Promise<DeliveryVerdict> = () => 'ack') {}

  readonly handler = (body: Buffer): DeliveryVerdict | Promise<DeliveryVerdict> => {
    const id = idOf(body);
    this.seen.push(id);
    this.waiters = this.waiters.filter((w) => (this.seen.length >= w.count ? (w.resolve(), false) : true));
    return this.write(id);
  };

  until(count: number, timeoutMs = 10_000): Promise<string[]> {
    if (this.seen.length >= count) return Promise.resolve(this.seen.slice());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} message(s), got ${JSON.stringify(this.seen)}`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.seen.slice());
        },
      });
    });
  }
}

/**
 * The NotificationBroker contract (src/core/notification-broker.ts), run on every implementation. The
 * "several nodes" cases run only on a fixture whose nodes share the broker.
 */
export function notificationBrokerContract(label: string, fixture: () => BrokerFixture): void {
  describe(`NotificationBroker contract: ${label}`, () => {
    const f = fixture();
    after(() => f.cleanup());
    const newProfile = (tag: string) => uniqueId(`contract-${tag}`) as ProfileId;
    const publishAll = async (broker: NotificationBroker, profile: ProfileId, messages: string[]) => {
      for (const id of messages) await broker.publish(profile, notification(id));
    };

    it('delivers in publish order, what waited first, then what is published while subscribed', async () => {
      const broker = await f.node();
      const profile = newProfile('order');
      await publishAll(broker, profile, ids(1, 20));
      const sockets = new Sockets();
      await broker.subscribe(profile, sockets.handler);
      await publishAll(broker, profile, ids(21, 60));
      assert.deepEqual(await sockets.until(60), ids(1, 60));
    });

    it('keeps profiles apart: each subscription gets its own messages only, each in order', async () => {
      const broker = await f.node();
      const profiles = [newProfile('apart-a'), newProfile('apart-b'), newProfile('apart-c')];
      const sockets = profiles.map(() => new Sockets());
      await Promise.all(profiles.map((p, i) => broker.subscribe(p, sockets[i]!.handler)));
      for (let n = 1; n <= 10; n += 1) {
        for (const [i, p] of profiles.entries()) await broker.publish(p, notification(`p${i}-${n}`));
      }
      for (const [i, s] of sockets.entries()) {
        assert.deepEqual(await s.until(10), Array.from({ length: 10 }, (_, n) => `p${i}-${n + 1}`));
      }
    });

    it('refuses a second subscription to one profile on one node', async () => {
      const broker = await f.node();
      const profile = newProfile('twice');
      await broker.subscribe(profile, new Sockets().handler);
      await assert.rejects(broker.subscribe(profile, new Sockets().handler));
    });

    it('after leaving, keeps what is published and delivers it on the next subscription, in order', async () => {
      const broker = await f.node();
      const profile = newProfile('rejoin');
      const first = new Sockets();
      const subscription = await broker.subscribe(profile, first.handler);
      await publishAll(broker, profile, ids(1, 3));
      await first.until(3);
      await subscription.unsubscribe();
      await publishAll(broker, profile, ids(4, 8));
      const second = new Sockets();
      await broker.subscribe(profile, second.handler);
      assert.deepEqual(await second.until(5), ids(4, 8));
      assert.deepEqual(first.seen, ids(1, 3), 'nothing reaches a subscription that left');
    });

    for (const late of [false, true]) {
      it(`keeps a message its sockets could not take (${late ? 'a late' : 'an immediate'} requeue) for the next subscription, in order`, async () => {
        const broker = await f.node();
        const profile = newProfile(late ? 'requeue-late' : 'requeue');
        let subscription: BrokerSubscription | undefined;
        let lost = false;
        const verdicts: Array<Promise<DeliveryVerdict>> = [];
        // The socket is lost at m3: from then on this node answers requeue, as the gateway does once its
        // last socket of the profile left, and then leaves the profile.
        const lossy = new Sockets((id) => {
          if (id === 'm3' && !lost) {
            lost = true;
            void Promise.resolve().then(() => subscription?.unsubscribe());
          }
          const verdict: DeliveryVerdict = lost ? 'requeue' : 'ack';
          if (!late) return verdict;
          const settled = new Promise<DeliveryVerdict>((resolve) => setImmediate(() => resolve(verdict)));
          verdicts.push(settled);
          return settled;
        });
        // All waiting before the join, so the lost message has newer ones behind it from the start.
        await publishAll(broker, profile, ids(1, 6));
        subscription = await broker.subscribe(profile, lossy.handler);
        await lossy.until(3);
        await subscription.unsubscribe();
        // Order holds once the old subscription's verdicts are in: a message still in flight when the
        // profile is joined again may come after newer ones (at least once across failures).
        await Promise.all(verdicts);
        const next = new Sockets();
        await broker.subscribe(profile, next.handler);
        const seen = await next.until(4);
        assert.deepEqual(seen, ids(3, 6), 'from the lost message on, in order');
        assert.deepEqual(lossy.seen.slice(0, 3), ids(1, 3));
      });
    }

    it('drops the oldest waiting messages past the retention length, and delivers the newest in order', async () => {
      const broker = await f.node({ maxLength: 3 });
      const profile = newProfile('retention');
      await publishAll(broker, profile, ids(1, 7));
      const sockets = new Sockets();
      await broker.subscribe(profile, sockets.handler);
      await publishAll(broker, profile, ['m8']);
      assert.deepEqual(await sockets.until(4), ['m5', 'm6', 'm7', 'm8']);
    });

    it('drops messages that waited longer than the message TTL, logs the drops, and delivers what came after', async () => {
      const broker = await f.node({ messageTtlMs: 300 });
      const profile = newProfile('ttl');
      await publishAll(broker, profile, ids(1, 2));
      await f.outliveMessageTtl(broker, profile, 2);
      const sockets = new Sockets();
      await broker.subscribe(profile, sockets.handler);
      // Published to a live subscription, so it never waits: had m1 or m2 survived, they would come first.
      await publishAll(broker, profile, ['m3']);
      assert.deepEqual(await sockets.until(1), ['m3']);
      assert.equal(await f.retentionDrops(profile, 2), 2);
      await publishAll(broker, profile, ['m4']);
      assert.deepEqual(await sockets.until(2), ['m3', 'm4']);
    });

    it('deletes an abandoned profile queue with what waited in it; the profile starts afresh on its next subscription', async () => {
      const broker = await f.node({ queueExpiresMs: 500 });
      const profile = newProfile('expiry');
      await publishAll(broker, profile, ids(1, 2));
      await f.outliveQueueExpiry(broker, profile);
      const sockets = new Sockets();
      await broker.subscribe(profile, sockets.handler);
      await publishAll(broker, profile, ids(3, 4));
      assert.deepEqual(await sockets.until(2), ['m3', 'm4']);
    });

    it('hands a slow subscription at most the prefetch, caps what waits behind it, and does not hold back other profiles', async () => {
      const broker = await f.node({ maxLength: 3, prefetch: 2 });
      const [slowProfile, otherProfile] = [newProfile('slow'), newProfile('slow-other')];
      const pending: Array<() => void> = [];
      let reading = false;
      // A socket that does not read until the test lets it: each write settles only then.
      const slow = new Sockets(() => (reading ? 'ack' : new Promise<DeliveryVerdict>((resolve) => pending.push(() => resolve('ack')))));
      const other = new Sockets();
      await broker.subscribe(slowProfile, slow.handler);
      await broker.subscribe(otherProfile, other.handler);
      await publishAll(broker, slowProfile, ids(1, 2));
      assert.deepEqual(await slow.until(2), ['m1', 'm2']);
      // Nothing more is handed while both are unsettled, so these wait, and only the newest 3 are kept.
      await publishAll(broker, slowProfile, ids(3, 9));
      assert.equal(await f.retentionDrops(slowProfile, 4), 4);
      await publishAll(broker, otherProfile, ids(1, 5));
      assert.deepEqual(await other.until(5), ids(1, 5), 'another profile on the node is served meanwhile');
      assert.deepEqual(slow.seen, ['m1', 'm2']);
      reading = true;
      for (const settle of pending.splice(0)) settle();
      assert.deepEqual(await slow.until(5), ['m1', 'm2', 'm7', 'm8', 'm9']);
    });

    it('dead-letters a message that is not a valid notification, never handing it to a subscription', async () => {
      const broker = await f.node();
      const profile = newProfile('dead');
      const sockets = new Sockets();
      await broker.subscribe(profile, sockets.handler);
      await broker.publish(profile, notification('m1'));
      await broker.publish(profile, Buffer.from('not json at all'));
      await broker.publish(profile, Buffer.from('{"data":{"type":"X"}}'));
      await broker.publish(profile, notification('m2'));
      assert.deepEqual(await sockets.until(2), ['m1', 'm2']);
      assert.deepEqual((await f.deadLetters(profile, 2)).sort(), ['not json at all', '{"data":{"type":"X"}}'].sort());
    });

    describe('several nodes', { skip: !f.shared && 'the nodes of this broker share nothing' }, () => {
      it('every subscribed node gets every message once, in order; a node that left gets nothing more', async () => {
        const [one, two, three] = [await f.node(), await f.node(), await f.node()];
        const profile = newProfile('nodes');
        const [a, b, c] = [new Sockets(), new Sockets(), new Sockets()];
        const subA = await one.subscribe(profile, a.handler);
        await two.subscribe(profile, b.handler);
        await three.subscribe(profile, c.handler);
        await publishAll(one, profile, ids(1, 30));
        for (const s of [a, b, c]) assert.deepEqual(await s.until(30), ids(1, 30));
        await subA.unsubscribe();
        await publishAll(two, profile, ids(31, 40));
        for (const s of [b, c]) assert.deepEqual(await s.until(40), ids(1, 40));
        assert.deepEqual(a.seen, ids(1, 30));
        // Back: it gets what is published from its join on, like any newcomer.
        const again = new Sockets();
        await one.subscribe(profile, again.handler);
        await publishAll(three, profile, ids(41, 50));
        assert.deepEqual(await again.until(10), ids(41, 50));
        for (const s of [b, c]) assert.deepEqual(await s.until(50), ids(1, 50));
      });

      it('a node whose sockets are lost hands nothing to the others twice and loses nothing for them', async () => {
        const [one, two] = [await f.node(), await f.node()];
        const profile = newProfile('nodes-lost');
        let subscription: BrokerSubscription | undefined;
        let lost = false;
        const lossy = new Sockets((id) => {
          if (id === 'm5' && !lost) {
            lost = true;
            void Promise.resolve().then(() => subscription?.unsubscribe());
          }
          return lost ? 'requeue' : 'ack';
        });
        const steady = new Sockets();
        subscription = await one.subscribe(profile, lossy.handler);
        await two.subscribe(profile, steady.handler);
        await publishAll(two, profile, ids(1, 20));
        // Not in order across the leave: what the leaving active node had taken but not yet relayed goes
        // back to the mailbox behind what the next active node already took (docs/rabbitmq-design.md,
        // "Ordering"). Each message still arrives, once.
        assert.deepEqual((await steady.until(20)).sort(byNumber), ids(1, 20));
        await publishAll(two, profile, ids(21, 25));
        const seen = await steady.until(25);
        assert.deepEqual(seen.slice().sort(byNumber), ids(1, 25), 'each message once on the node that kept its sockets');
        assert.deepEqual(seen.slice(20), ids(21, 25), 'in order again once the leave is over');
      });
    });
  });
}
