import { MemoryBroker } from '../../src/backends/memory/memory-broker.js';
import type { ProfileId } from '../../src/core/ids.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { notificationBrokerContract } from './notification-broker.contract.js';

notificationBrokerContract('memory', () => {
  const brokers: MemoryBroker[] = [];
  return {
    shared: false,
    async node(options = {}) {
      // A fake clock: nothing in the contract waits for time to pass, and the sweep must not fire.
      const broker = new MemoryBroker({ maxLength: options.maxLength ?? 10_000, messageTtlMs: 600_000, queueExpiresMs: 60_000 }, new FakeClock(), captureLogger());
      await broker.start();
      brokers.push(broker);
      return broker;
    },
    // The memory broker dead-letters synchronously, before it hands on the next message.
    async deadLetters(profile: ProfileId) {
      return brokers.flatMap((b) => b.deadLetters().filter((d) => d.profileId === profile).map((d) => d.body.toString()));
    },
    async cleanup() {
      for (const broker of brokers) await broker.close();
    },
  };
});
