import type { ConsumeMessage } from 'amqplib';
import { AmqpBroker } from '../../src/backends/rabbitmq/amqp-broker.js';
import { relayQueueName } from '../../src/backends/rabbitmq/topology.js';
import type { ProfileId } from '../../src/core/ids.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { uniqueId } from '../helpers/gateway.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { notificationBrokerContract } from './notification-broker.contract.js';

/**
 * The contract on the real RabbitMQ: every node is an AmqpBroker in this process. The dead-letter
 * topology is this run's own (a unique name), and every queue the run declared is deleted after it, so
 * runs sharing the broker do not meet.
 */
notificationBrokerContract('rabbitmq', () => {
  const queuePrefix = 'message_to_user.';
  const deadLetterQueue = uniqueId('switchboard.test.dead_letter.contract');
  const brokers: AmqpBroker[] = [];
  const nodeIds: string[] = [];
  const profiles = new Set<string>();
  const dead: Array<{ queue: string; body: string }> = [];
  let waiters: Array<() => void> = [];
  let admin: Awaited<ReturnType<typeof plainAmqp>> | undefined;

  /** Reads this run's dead-letter queue as messages arrive (no polling). */
  async function watchDeadLetters(): Promise<void> {
    if (admin) return;
    admin = await plainAmqp();
    await admin.channel.consume(deadLetterQueue, (msg: ConsumeMessage | null) => {
      if (!msg) return;
      const deaths = (msg.properties.headers?.['x-death'] as Array<{ queue?: string }> | undefined) ?? [];
      dead.push({ queue: String(deaths[0]?.queue ?? ''), body: msg.content.toString() });
      admin?.channel.ack(msg);
      for (const wake of waiters) wake();
    });
  }

  return {
    shared: true,
    async node(options = {}) {
      const nodeId = uniqueId('contract-node');
      nodeIds.push(nodeId);
      const broker = new AmqpBroker({
        url: amqpUrl,
        nodeId,
        queuePrefix,
        deadLetterQueue,
        retention: { ...testRetention, maxLength: options.maxLength ?? testRetention.maxLength },
        nodeQueueExpiresMs: 60_000,
        prefetch: 500,
        peerCheckIntervalMs: 0,
        log: captureLogger(),
      });
      await broker.start();
      brokers.push(broker);
      // Remember the profiles a test uses, for the cleanup.
      const subscribe = broker.subscribe.bind(broker);
      const publish = broker.publish.bind(broker);
      broker.subscribe = (profile, handler) => (profiles.add(profile), subscribe(profile, handler));
      broker.publish = (profile, body) => (profiles.add(profile), publish(profile, body));
      await watchDeadLetters();
      return broker;
    },
    deadLetters(profile: ProfileId, count: number) {
      const mine = () => dead.filter((d) => d.queue === `${queuePrefix}${profile}`).map((d) => d.body);
      return new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${count} dead letter(s), got ${JSON.stringify(mine())}`)), 10_000);
        const check = () => {
          if (mine().length < count) return;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
          resolve(mine());
        };
        waiters.push(check);
        check();
      });
    },
    async cleanup() {
      for (const broker of brokers) await broker.close();
      const { channel, close } = admin ?? (await plainAmqp());
      const queues = [deadLetterQueue, `${deadLetterQueue}.log`];
      for (const profile of profiles) queues.push(`${queuePrefix}${profile}`, ...nodeIds.map((n) => relayQueueName(n, profile)));
      for (const queue of queues) await channel.deleteQueue(queue);
      await channel.deleteExchange(deadLetterQueue);
      await close();
    },
  };
});
