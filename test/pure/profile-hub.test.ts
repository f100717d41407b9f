import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { profileId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import type { DeliveryHandler, DeliveryVerdict, NotificationBroker } from '../../src/core/notification-broker.js';
import { ProfileHub, type ProfileSubscriber, type WriteCallback } from '../../src/notify/profile-hub.js';

/** A broker double that records the hub's handler and its subscribe/unsubscribe calls. */
function recordingBroker() {
  const calls: string[] = [];
  let handler: DeliveryHandler | undefined;
  const broker = {
    name: 'broker',
    kind: 'fake',
    state: () => 'up' as const,
    onStateChange: () => () => {},
    start: async () => {},
    close: async () => {},
    publish: async () => {},
    subscribe: async (profile: string, onDelivery: DeliveryHandler) => {
      calls.push(`subscribe ${profile}`);
      handler = onDelivery;
      return { unsubscribe: async () => void calls.push(`unsubscribe ${profile}`) };
    },
  } satisfies NotificationBroker;
  return { broker, calls, deliver: (body: string) => handler!(Buffer.from(body)) };
}

/** A socket double: accepts while open and keeps the write callbacks for the test to fire. */
function fakeSocket() {
  const socket: ProfileSubscriber & { open: boolean; pending: WriteCallback[] } = {
    acknowledges: false,
    open: true,
    pending: [],
    deliver: (_body, onWritten) => socket.open && socket.pending.push(onWritten) > 0,
  };
  return socket;
}

const settled = async (verdict: DeliveryVerdict | Promise<DeliveryVerdict>) => verdict;

describe('ProfileHub verdicts', () => {
  const alice = profileId('alice');

  it('acks once the first socket wrote the message, without waiting for a slower one', async () => {
    const { broker, deliver } = recordingBroker();
    const hub = new ProfileHub(broker, silentLogger);
    const fast = fakeSocket();
    const slow = fakeSocket();
    await hub.join(alice, fast);
    await hub.join(alice, slow);
    const verdict = deliver('m');
    assert.ok(verdict instanceof Promise, 'the verdict waits for a write');
    fast.pending[0]!();
    assert.equal(await settled(verdict), 'ack');
    assert.equal(slow.pending.length, 1, 'the slow socket still has it queued');
  });

  it('requeues when every socket died before writing', async () => {
    const { broker, deliver } = recordingBroker();
    const hub = new ProfileHub(broker, silentLogger);
    const a = fakeSocket();
    const b = fakeSocket();
    await hub.join(alice, a);
    await hub.join(alice, b);
    const verdict = deliver('m');
    a.pending[0]!(new Error('gone'));
    b.pending[0]!(new Error('gone'));
    assert.equal(await settled(verdict), 'requeue');
  });

  it('requeues at once and drops sockets that are gone, unsubscribing after the last one', async () => {
    const { broker, calls, deliver } = recordingBroker();
    const hub = new ProfileHub(broker, silentLogger);
    const socket = fakeSocket();
    await hub.join(alice, socket);
    socket.open = false;
    assert.equal(deliver('m'), 'requeue');
    await hub.drain();
    assert.deepEqual(calls, ['subscribe alice', 'unsubscribe alice']);
    assert.deepEqual(hub.snapshot(), []);
    hub.leave(alice, socket); // the socket's own leave, arriving later, is a no-op
    assert.deepEqual(calls, ['subscribe alice', 'unsubscribe alice']);
  });
});
