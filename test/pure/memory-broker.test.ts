import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker } from '../../src/backends/memory/memory-broker.js';
import { profileId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { FakeClock } from '../helpers/fake-clock.js';

const msg = (id: string) => Buffer.from(JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id } }));
const ids = (bodies: Buffer[]) => bodies.map((b) => JSON.parse(b.toString()).data.id);
const nextTick = () => new Promise((r) => setImmediate(r));

describe('memory broker', () => {
  const retention = { maxLength: 3, messageTtlMs: 1_000, queueExpiresMs: 10_000 };
  const profile = profileId('p');

  it('keeps waiting messages up to the max length, dropping the oldest, and delivers them in order on subscribe', async () => {
    const broker = new MemoryBroker(retention, new FakeClock(), silentLogger);
    await broker.start();
    for (const id of ['1', '2', '3', '4', '5']) await broker.publish(profile, msg(id));
    const got: Buffer[] = [];
    await broker.subscribe(profile, (b) => (got.push(b), 'ack'));
    await nextTick();
    assert.deepEqual(ids(got), ['3', '4', '5']);
    await broker.close();
  });

  it('drops waiting messages older than the TTL', async () => {
    const clock = new FakeClock();
    const broker = new MemoryBroker(retention, clock, silentLogger);
    await broker.start();
    await broker.publish(profile, msg('old'));
    clock.advance(1_500);
    await broker.publish(profile, msg('new'));
    const got: Buffer[] = [];
    await broker.subscribe(profile, (b) => (got.push(b), 'ack'));
    await nextTick();
    assert.deepEqual(ids(got), ['new']);
    await broker.close();
  });

  it('dead-letters invalid messages and keeps them for inspection', async () => {
    const broker = new MemoryBroker(retention, new FakeClock(), silentLogger);
    await broker.start();
    const got: Buffer[] = [];
    await broker.subscribe(profile, (b) => (got.push(b), 'ack'));
    await broker.publish(profile, Buffer.from('nope'));
    await broker.publish(profile, msg('ok'));
    assert.deepEqual(ids(got), ['ok']);
    assert.deepEqual(broker.deadLetters().map((d) => [d.reason, d.body.toString()]), [['not JSON', 'nope']]);
    await broker.close();
  });

  it('keeps a message whose handler asks to requeue it, for the next subscriber', async () => {
    const broker = new MemoryBroker(retention, new FakeClock(), silentLogger);
    await broker.start();
    const first = await broker.subscribe(profile, () => 'requeue');
    await broker.publish(profile, msg('kept'));
    await first.unsubscribe();
    const got: Buffer[] = [];
    await broker.subscribe(profile, (b) => (got.push(b), 'ack'));
    await nextTick();
    assert.deepEqual(ids(got), ['kept']);
    await broker.close();
  });
});
