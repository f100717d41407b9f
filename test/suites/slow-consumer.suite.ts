import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { deepMerge, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { join, TestClient } from '../helpers/ws-client.js';

/** How the suite reaches one broker implementation. */
export interface SlowConsumerBroker {
  /** Gateway config selecting the broker (e.g. {amqpUrl}). */
  overrides: Record<string, unknown>;
  /** A publisher into profiles' mailboxes, as a backend would publish for the gateway `gw`. */
  publisher(gw: RunningGateway): Promise<MailboxPublisher>;
  /** Removes what the broker keeps for these profiles after the gateways are gone. */
  cleanup(profiles: string[]): Promise<void>;
}

export interface MailboxPublisher {
  /** Resolves once the broker has the message; calls in a row keep their order. */
  publish(profile: string, body: Buffer): Promise<void>;
  close(): Promise<void>;
}

const messages = 10_000;
const maxBufferedBytes = 256 * 1024;
const prefetch = 50;
/** Messages published (per profile) before the publisher waits for the broker, then for the readers to be within `lag`. */
const batch = 100;
const lag = 2 * batch;
const pad = 'x'.repeat(2_000);
const message = (prefix: string, n: number) => Buffer.from(`{"data":{"type":"X-BENCH","id":"${prefix}-${n}","pad":"${pad}"}}`);
const idOf = (frame: string) => Number((JSON.parse(frame) as { data: { id: string } }).data.id.split('-').pop());
const allIds = [...Array(messages).keys()];
const socketOf = (client: TestClient) => (client.ws as unknown as { _socket: Socket })._socket;

/** Receives frames until the one with id `last`; returns the ids in arrival order. */
async function receiveUntil(client: TestClient, last: number): Promise<number[]> {
  const ids: number[] = [];
  while (ids.at(-1) !== last) ids.push(idOf(await client.next(20_000)));
  return ids;
}

/**
 * Waits, frame by frame, until `done()` holds, `timeoutMs` passed or a client closed (then the assertions
 * that follow tell what went wrong).
 */
async function framesUntil(clients: TestClient[], done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline && clients.every((c) => c.closeCode === undefined)) {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), deadline - Date.now());
    const events = clients.flatMap((c) => [once(c.ws, 'message', { signal: stop.signal }), once(c.ws, 'close', { signal: stop.signal })]);
    await Promise.race(events).catch(() => {});
    clearTimeout(timer);
    stop.abort();
  }
}

/**
 * Slow consumers (README "Slow consumers"), run once per broker implementation. Messages are acknowledged
 * to the broker once written out to a socket, and at most `prefetch` per profile are in flight, so a client
 * that stops reading either stalls its own profile (nothing lost) or, when a sibling socket keeps the
 * profile moving, sees its unsent buffer pass maxBufferedBytes and is closed with 4008. Either way memory
 * stays bounded and other clients are served.
 */
export function slowConsumerSuite(brokerName: string, brokerOf: () => SlowConsumerBroker): void {
  describe(`slow consumers on the ${brokerName} broker`, () => {
    const broker = brokerOf();
    const run = uniqueId('slow');
    const profiles = { slow: `slow-${run}`, fast: `fast-${run}`, gone: `gone-${run}` };
    const tokens = Object.fromEntries(Object.values(profiles).map((p) => [`tok-${p}`, p]));
    const gateways: RunningGateway[] = [];
    const publishers: MailboxPublisher[] = [];
    const clients: TestClient[] = [];
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(publishers.map((p) => p.close()));
      await Promise.all(gateways.map((g) => g.close()));
      await broker.cleanup(Object.values(profiles));
    });

    const logs = captureLogs();
    const disconnects = () => logs.lines.filter((l) => l.msg === 'disconnected' && l.channel === 'notify').length;
    const start = async () => {
      const config = { tokens: { kind: 'static', tokens }, maxBufferedBytes, notify: { prefetch, retention: { maxLength: 100_000 } } };
      const gw = await startGateway(deepMerge(broker.overrides, config), { logger: logs.logger });
      gateways.push(gw);
      const publisher = await broker.publisher(gw);
      publishers.push(publisher);
      return { gw, publisher };
    };
    const joined = async (gw: RunningGateway, profile: string) => {
      const client = await TestClient.connect(gw.wsUrl);
      clients.push(client);
      assert.equal((await client.request(join(`tok-${profile}`))).status, 200);
      return client;
    };
    const socketsOpen = async (gw: RunningGateway) =>
      (await gw.gateway.metrics.socketsOpen.get()).values.find((v) => v.labels.channel === 'notify')?.value ?? 0;
    const metric = async (gw: RunningGateway, name: 'backpressureCloses' | 'bufferedBytes' | 'messagesWritten') =>
      (await gw.gateway.metrics[name].get()).values[0]?.value ?? 0;

    it('closes a socket that stops reading with 4008 while its profile and the others keep being served', async () => {
      const { gw, publisher } = await start();
      const slow = await joined(gw, profiles.slow);
      const steady = await joined(gw, profiles.slow);
      const fast = await joined(gw, profiles.fast);
      socketOf(slow).pause();
      const steadyIds = receiveUntil(steady, messages - 1);
      const fastIds = receiveUntil(fast, messages - 1);

      // 10,000 messages for each profile, paced by the readers (they share this process's event loop). The
      // slow client reads again once it was cut off: the bytes already written, then the close frame.
      let peak = 0;
      let resumed = false;
      for (let n = 0; n < messages; n += batch) {
        const published: Array<Promise<void>> = [];
        for (let i = n; i < n + batch; i++) {
          published.push(publisher.publish(profiles.slow, message('s', i)), publisher.publish(profiles.fast, message('f', i)));
        }
        await Promise.all(published);
        peak = Math.max(peak, await metric(gw, 'bufferedBytes'));
        if (!resumed && (await metric(gw, 'backpressureCloses')) === 1) {
          socketOf(slow).resume();
          resumed = true;
        }
        await framesUntil([steady, fast], () => Math.min(steady.frames.length, fast.frames.length) >= n + batch - lag, 5_000);
      }
      assert.deepEqual(await steadyIds, allIds, "the profile's other socket got every message, in order");
      assert.deepEqual(await fastIds, allIds, "another profile's socket got every message, in order");
      assert.equal(await metric(gw, 'backpressureCloses'), 1);
      if (!resumed) socketOf(slow).resume();
      assert.equal(await slow.closed, 4008);
      const seen = slow.unread().filter((f) => f.startsWith('{"data"')).map(idOf);
      assert.ok(seen.length < messages, 'the slow client was cut off before the end');
      assert.deepEqual(seen, allIds.slice(0, seen.length), 'what it got before the cut is an ordered prefix');
      assert.ok(peak <= 2 * maxBufferedBytes, `unsent bytes stay bounded (peak ${peak} B)`);
    });

    it('keeps the messages of a lone socket that stops reading, then goes away, for the next socket of the profile', async () => {
      const { gw, publisher } = await start();
      const gone = await joined(gw, profiles.gone);
      socketOf(gone).pause();
      for (let n = 0; n < messages; n += batch) {
        await Promise.all(Array.from({ length: batch }, (_, i) => publisher.publish(profiles.gone, message('g', n + i))));
      }
      assert.ok((await metric(gw, 'bufferedBytes')) <= maxBufferedBytes, 'at most the prefetch window sits in buffers');
      const seen = disconnects();
      gone.ws.terminate();
      // The gateway logs 'disconnected' once it has counted the socket closed.
      await logs.until(() => (disconnects() > seen ? true : undefined));
      assert.equal(await socketsOpen(gw), 0);

      // What reached the kernel's socket buffers before the stall counts as written (acknowledged); what was
      // still in the gateway's hands (at most the prefetch window) goes back to the broker. Everything after
      // the written part comes to the next socket, whole and in order. With the in-memory broker nothing
      // gets to the kernel (delivery is synchronous with the publishes); with RabbitMQ deliveries trickle in
      // while the publisher waits for confirms, and the kernel buffers take a few MiB first.
      const handedToGone = await metric(gw, 'messagesWritten');
      const again = await joined(gw, profiles.gone);
      const rest = await receiveUntil(again, messages - 1);
      const first = rest[0]!;
      assert.ok(
        first <= handedToGone && first >= handedToGone - prefetch,
        `redelivery starts right after what reached the kernel (first redelivered: ${first}, handed to the gone socket: ${handedToGone})`,
      );
      assert.deepEqual(rest, allIds.slice(first), 'a gap-free, ordered remainder');
    });
  });
}
