import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { profileId } from '../../src/core/ids.js';
import { startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { join, TestClient } from '../helpers/ws-client.js';

const messages = 10_000;
const maxBufferedBytes = 256 * 1024;
const pad = 'x'.repeat(2_000);
const message = (prefix: string, n: number) => `{"data":{"type":"X-BENCH","id":"${prefix}-${n}","pad":"${pad}"}}`;
const idOf = (frame: string) => Number((JSON.parse(frame) as { data: { id: string } }).data.id.split('-').pop());
const allIds = [...Array(messages).keys()];
const socketOf = (client: TestClient) => (client.ws as unknown as { _socket: Socket })._socket;
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Receives frames until the one with id `last`; returns the ids in arrival order. */
async function receiveUntil(client: TestClient, last: number): Promise<number[]> {
  const ids: number[] = [];
  while (ids.at(-1) !== last) ids.push(idOf(await client.next(20_000)));
  return ids;
}

/**
 * Slow consumers (README "Slow consumers"). Messages are acknowledged to the broker once written out to a
 * socket, and at most `prefetch` per profile are in flight, so a client that stops reading either stalls its
 * own profile (nothing lost) or, when a sibling socket keeps the profile moving, sees its unsent buffer pass
 * maxBufferedBytes and is closed with 4008. Either way memory stays bounded and other clients are served.
 */
describe('slow consumers', () => {
  const run = uniqueId('slow');
  const profiles = { slow: `slow-${run}`, fast: `fast-${run}`, gone: `gone-${run}` };
  const tokens = Object.fromEntries(Object.values(profiles).map((p) => [`tok-${p}`, p]));
  const gateways: RunningGateway[] = [];
  const clients: TestClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(gateways.map((g) => g.close()));
  });

  const start = async (overrides: Record<string, unknown> = {}) => {
    const gw = await startGateway({ tokens: { kind: 'static', tokens }, maxBufferedBytes, notify: { prefetch: 50, retention: { maxLength: 100_000 } }, ...overrides });
    gateways.push(gw);
    return gw;
  };
  const joined = async (gw: RunningGateway, profile: string) => {
    const client = await TestClient.connect(gw.wsUrl);
    clients.push(client);
    assert.equal((await client.request(join(`tok-${profile}`))).status, 200);
    return client;
  };
  const socketsOpen = async (gw: RunningGateway) =>
    (await gw.gateway.metrics.socketsOpen.get()).values.find((v) => v.labels.channel === 'notify')?.value ?? 0;
  const metric = async (gw: RunningGateway, name: 'backpressureCloses' | 'bufferedBytes') =>
    (await gw.gateway.metrics[name].get()).values[0]?.value ?? 0;

  it('closes a socket that stops reading with 4008 while its profile and the others keep being served', async () => {
    const gw = await start();
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
    for (let n = 0; n < messages; n++) {
      await gw.gateway.broker.publish(profileId(profiles.slow), Buffer.from(message('s', n)));
      await gw.gateway.broker.publish(profileId(profiles.fast), Buffer.from(message('f', n)));
      if (n % 25 !== 24) continue;
      peak = Math.max(peak, await metric(gw, 'bufferedBytes'));
      if (!resumed && (await metric(gw, 'backpressureCloses')) === 1) {
        socketOf(slow).resume();
        resumed = true;
      }
      for (let i = 0; i < 10_000 && Math.min(steady.frames.length, fast.frames.length) < n - 50; i++) await tick();
    }
    assert.deepEqual(await steadyIds, allIds, 'the profile\'s other socket got every message, in order');
    assert.deepEqual(await fastIds, allIds, 'another profile\'s socket got every message, in order');
    assert.equal(await metric(gw, 'backpressureCloses'), 1);
    if (!resumed) socketOf(slow).resume();
    assert.equal(await slow.closed, 4008);
    const seen = slow.unread().filter((f) => f.startsWith('{"data"')).map(idOf);
    assert.ok(seen.length < messages, 'the slow client was cut off before the end');
    assert.deepEqual(seen, allIds.slice(0, seen.length), 'what it got before the cut is an ordered prefix');
    assert.ok(peak <= 2 * maxBufferedBytes, `unsent bytes stay bounded (peak ${peak} B)`);
  });

  it('keeps the messages of a lone socket that stops reading, then goes away, for the next socket of the profile', async () => {
    const gw = await start();
    const gone = await joined(gw, profiles.gone);
    socketOf(gone).pause();
    for (let n = 0; n < messages; n++) await gw.gateway.broker.publish(profileId(profiles.gone), Buffer.from(message('g', n)));
    assert.ok((await metric(gw, 'bufferedBytes')) <= maxBufferedBytes, 'at most the prefetch window sits in buffers');
    gone.ws.terminate();
    for (let i = 0; i < 500 && (await socketsOpen(gw)) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(await socketsOpen(gw), 0);

    // What was handed to the kernel before the stall counts as written; everything after it comes, whole and in order.
    const again = await joined(gw, profiles.gone);
    const rest = await receiveUntil(again, messages - 1);
    const first = rest[0]!;
    assert.ok(first <= 50, `only the prefetch window can have been written before the stall (first redelivered: ${first})`);
    assert.deepEqual(rest, allIds.slice(first), 'a gap-free, ordered remainder');
  });
});
