import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  batchHeader,
  batchVerdict,
  encodeBatch,
  endMarkerHeaders,
  expiredCopyToDrop,
  mailboxHeadersOf,
  markerHeaders,
  mayGiveBack,
  notificationCount,
  notificationsOf,
  readMarker,
  RelayIds,
  relayCopyHeaders,
  relayIdOf,
} from '../../src/backends/rabbitmq/relay-protocol.js';
import { relayQueueName } from '../../src/backends/rabbitmq/topology.js';

describe('relay protocol', () => {
  it('keeps the header names on the wire (nodes of other versions read them)', () => {
    assert.deepEqual(markerHeaders('hello', 'n1'), { 'x-switchboard-marker': 'hello', 'x-switchboard-node': 'n1' });
    assert.deepEqual(relayCopyHeaders({ a: 1 }, 'n1:r:0:5', 'n1', true), {
      a: 1,
      'x-switchboard-relay': 'n1:r:0:5',
      'x-switchboard-node': 'n1',
      'x-switchboard-shared': true,
    });
    assert.deepEqual(endMarkerHeaders('end:r:7'), { 'x-switchboard-marker': 'end', 'x-switchboard-relay': 'end:r:7' });
  });

  it('reads markers back, with their node, and nothing from a notification', () => {
    assert.deepEqual(readMarker(markerHeaders('bye', 'n2')), { marker: 'bye', node: 'n2' });
    assert.deepEqual(readMarker(endMarkerHeaders('end:x')), { marker: 'end', node: '' }, 'an end marker has no node: every node drops it');
    assert.equal(readMarker({ 'content-kind': 'x' }), undefined);
    assert.equal(readMarker(undefined), undefined);
  });

  it('marks a copy shared only when the relaying node knew other holders', () => {
    assert.equal(relayCopyHeaders(undefined, 'id', 'n1', false)['x-switchboard-shared'], undefined);
    assert.equal(relayIdOf(relayCopyHeaders(undefined, 'id', 'n1', false)), 'id');
    assert.equal(relayIdOf({ 'x-switchboard-relay': 3 }), undefined);
  });

  it('gives back only copies this node relayed while it knew no other holder', () => {
    assert.equal(mayGiveBack(relayCopyHeaders({}, 'id', 'n1', false), 'n1'), true);
    assert.equal(mayGiveBack(relayCopyHeaders({}, 'id', 'n1', true), 'n1'), false, 'shared: every holder got its own copy');
    assert.equal(mayGiveBack(relayCopyHeaders({}, 'id', 'n2', false), 'n1'), false, 'relayed by another node, which got its own');
    assert.equal(mayGiveBack(undefined, 'n1'), false);
  });

  it('strips the relay headers from a copy going back to the mailbox and keeps the rest', () => {
    assert.deepEqual(mailboxHeadersOf(relayCopyHeaders({ keep: 'me', 'x-death': [] }, 'id', 'n1', true)), { keep: 'me', 'x-death': [] });
  });

  it('drops an expired copy only when it expired in another node’s relay queue', () => {
    const death = (queue: string) => ({ 'x-death': [{ reason: 'expired', queue }], 'x-switchboard-node': 'n1' });
    assert.equal(expiredCopyToDrop(death(relayQueueName('n2', 'p')), 'p'), true);
    assert.equal(expiredCopyToDrop(death(relayQueueName('n1', 'p')), 'p'), false, 'its own queue: delivered again');
    assert.equal(expiredCopyToDrop({ 'x-switchboard-node': 'n1' }, 'p'), false);
    assert.equal(expiredCopyToDrop(undefined, 'p'), false);
  });

  it('gives copy ids an epoch per attach, and end markers ids that no copy has', () => {
    const ids = new RelayIds('n1', 'run');
    const first = ids.newEpoch();
    const second = ids.newEpoch();
    assert.notEqual(first, second);
    const copy = ids.copyId(first);
    assert.ok(copy.startsWith(first) && !copy.startsWith(second));
    const end = ids.endId();
    assert.ok(end.startsWith('end:run:'));
    assert.notEqual(ids.copyId(first), copy);
  });

  it('carries several notifications in one batch copy, byte for byte, and refuses a body that is not one', () => {
    const bodies = [Buffer.from('{"a":1}'), Buffer.alloc(0), Buffer.from('{"b":"ü"}')];
    const batch = encodeBatch(bodies);
    const headers = { [batchHeader]: 3, 'x-switchboard-node': 'n1' };
    assert.deepEqual(notificationsOf(headers, batch), bodies);
    assert.equal(notificationCount(headers), 3);
    // The batch header survives the way back to the mailbox: a given-back batch is split where delivered.
    assert.deepEqual(notificationsOf(mailboxHeadersOf(headers), batch), bodies);
    const plain = Buffer.from('{"c":1}');
    assert.deepEqual(notificationsOf(undefined, plain), [plain]);
    assert.equal(notificationCount(undefined), 1);
    assert.equal(notificationsOf({ [batchHeader]: 2 }, batch), undefined, 'fewer parts than declared');
    assert.equal(notificationsOf({ [batchHeader]: 3 }, batch.subarray(0, batch.length - 1)), undefined, 'truncated');
    assert.equal(notificationsOf({ [batchHeader]: 'x' }, batch), undefined);
    assert.equal(notificationsOf({ [batchHeader]: 1 }, Buffer.from([0, 0, 0])), undefined);
  });

  it('settles a batch by its strongest verdict', () => {
    assert.equal(batchVerdict(['ack', 'ack']), 'ack');
    assert.equal(batchVerdict(['ack', 'reject']), 'ack');
    assert.equal(batchVerdict(['ack', 'requeue', 'reject']), 'requeue');
    assert.equal(batchVerdict(['requeue', 'redeliver', 'ack']), 'redeliver');
  });
});
