import { MemoryBroker } from '../../src/backends/memory/memory-broker.js';
import type { ProfileId } from '../../src/core/ids.js';
import type { NotificationBroker } from '../../src/core/notification-broker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/log-capture.js';
import { notificationBrokerContract } from '../suites/notification-broker.contract.js';

/** The contract on the memory broker: time passes only when a case asks, on each node's own fake clock. */
notificationBrokerContract('memory', () => {
  const brokers = new Map<NotificationBroker, { broker: MemoryBroker; clock: FakeClock; ttlMs: number; expiresMs: number }>();
  const logs = captureLogs();
  const node = (broker: NotificationBroker) => {
    const found = brokers.get(broker);
    if (!found) throw new Error('not a node of this fixture');
    return found;
  };
  return {
    shared: false,
    async node(options = {}) {
      const clock = new FakeClock();
      const retention = { maxLength: options.maxLength ?? 10_000, messageTtlMs: options.messageTtlMs ?? 600_000, queueExpiresMs: options.queueExpiresMs ?? 600_000 };
      const broker = new MemoryBroker(retention, clock, logs.logger, undefined, options.prefetch ?? 500);
      await broker.start();
      brokers.set(broker, { broker, clock, ttlMs: retention.messageTtlMs, expiresMs: retention.queueExpiresMs });
      return broker;
    },
    // The memory broker dead-letters synchronously, before it hands on the next message.
    async deadLetters(profile: ProfileId) {
      return [...brokers.values()].flatMap(({ broker }) => broker.deadLetters().filter((d) => d.profileId === profile).map((d) => d.body.toString()));
    },
    async outliveMessageTtl(broker) {
      const { clock, ttlMs } = node(broker);
      clock.advance(ttlMs);
    },
    async outliveQueueExpiry(broker) {
      const { clock, expiresMs } = node(broker);
      clock.advance(expiresMs);
    },
    retentionDrops(profile, count) {
      return logs.until((lines) => {
        const dropped = lines
          .filter((l) => l.msg === 'retention policy dropped waiting messages' && l.profileId === profile)
          .reduce((sum, l) => sum + Number(l.count), 0);
        return dropped >= count ? dropped : undefined;
      });
    },
    async cleanup() {
      for (const { broker } of brokers.values()) await broker.close();
    },
  };
});
