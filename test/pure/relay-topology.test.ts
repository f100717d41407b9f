import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expiredRelayCopy, isRelayQueueName, nodeQueueName, relayCopyTtlMs, relayQueueArguments, relayQueueName } from '../../src/backends/rabbitmq/topology.js';

describe('per-profile relay queues', () => {
  const longProfile = 'p'.repeat(200);

  it('names the queue after the node and the profile while that fits 255 bytes', () => {
    assert.equal(relayQueueName('node-1', 'alice'), 'switchboard.relay.node-1/alice');
    const fits = relayQueueName('n'.repeat(36), longProfile);
    assert.equal(Buffer.byteLength(fits), 255);
    assert.ok(fits.endsWith(`/${longProfile}`));
  });

  it('uses a digest when node id and profile are too long together, within 255 bytes', () => {
    for (const nodeId of ['n'.repeat(37), 'é'.repeat(30), 'x'.repeat(10_000)]) {
      const name = relayQueueName(nodeId, longProfile);
      assert.ok(Buffer.byteLength(name) <= 255, name);
      assert.match(name, /^switchboard\.relay\.[0-9a-f]{64}$/);
      assert.ok(isRelayQueueName(name));
    }
    assert.notEqual(relayQueueName('n'.repeat(37), longProfile), relayQueueName('n'.repeat(38), longProfile));
  });

  it('gives every (node, profile) pair its own queue, dots and slashes in node ids included', () => {
    const pairs: Array<[string, string]> = [
      ['a.b', 'c'],
      ['a', 'b.c'],
      ['a/b', 'c'],
      ['a', 'b'],
      ['n'.repeat(60), 'p'],
      ['n'.repeat(60), 'q'],
    ];
    const names = pairs.map(([node, profile]) => relayQueueName(node, profile));
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.every(isRelayQueueName));
    assert.equal(isRelayQueueName(nodeQueueName('a')), false, "the old shared queue is not a per-profile one");
  });

  it('dead-letters waiting copies back to the mailbox before the queue expires', () => {
    const args = relayQueueArguments(300_000, 'message_to_user.alice');
    assert.deepEqual(args, {
      'x-expires': 300_000,
      'x-message-ttl': 270_000,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'message_to_user.alice',
    });
    assert.ok(relayCopyTtlMs(10_000) < 10_000 && relayCopyTtlMs(10_000) > 0);
  });

  it("sends an expired copy on only when it expired in the queue of the node that relayed it", () => {
    const died = (queue: string, reason = 'expired') => [{ queue, reason, count: 1 }];
    assert.equal(expiredRelayCopy(died(relayQueueName('n1', 'alice')), 'n1', 'alice'), 'redeliver');
    assert.equal(expiredRelayCopy(died(relayQueueName('n2', 'alice')), 'n1', 'alice'), 'drop');
    assert.equal(expiredRelayCopy(died('message_to_user.alice'), 'n1', 'alice'), undefined, 'not from a relay queue');
    assert.equal(expiredRelayCopy(died(relayQueueName('n2', 'alice'), 'rejected'), 'n1', 'alice'), undefined, 'not expired');
    assert.equal(expiredRelayCopy(died(relayQueueName('n2', 'alice')), undefined, 'alice'), undefined, 'not a copy');
    assert.equal(expiredRelayCopy(undefined, 'n1', 'alice'), undefined);
    const latestFirst = [...died(relayQueueName('n1', 'alice')), ...died(relayQueueName('n2', 'alice'))];
    assert.equal(expiredRelayCopy(latestFirst, 'n1', 'alice'), 'redeliver', 'the most recent death decides');
  });
});
