import type { ConsumeMessage } from 'amqplib';
import { AmqpBroker } from '../../src/backends/rabbitmq/amqp-broker.js';
import { relayQueueName } from '../../src/backends/rabbitmq/topology.js';
import type { ProfileId } from '../../src/core/ids.js';
import type { NotificationBroker } from '../../src/core/notification-broker.js';
import { uniqueId } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { notificationBrokerContract } from '../suites/notification-broker.contract.js';

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
  const dead: Array<{ queue: string; reason: string; body: string }> = [];
  const logs = captureLogs();
  let waiters: Array<() => void> = [];
  let admin: Awaited<ReturnType<typeof plainAmqp>> | undefined;

  /** Reads this run's dead-letter queue as messages arrive (no polling). */
  async function watchDeadLetters(): Promise<void> {
    if (admin) return;
    admin = await plainAmqp();
    await admin.channel.consume(deadLetterQueue, (msg: ConsumeMessage | null) => {
      if (!msg) return;
      const deaths = (msg.properties.headers?.['x-death'] as Array<{ queue?: string; reason?: string }> | undefined) ?? [];
      dead.push({ queue: String(deaths[0]?.queue ?? ''), reason: String(deaths[0]?.reason ?? ''), body: msg.content.toString() });
      admin?.channel.ack(msg);
      for (const wake of waiters) wake();
    });
  }

  async function adminChannel(): Promise<NonNullable<typeof admin>> {
    await watchDeadLetters();
    return admin!;
  }

  /** Resolves with the bodies of the profile's dead letters that match, once at least `count` are there. */
  function deadOf(profile: ProfileId, count: number, match: (d: (typeof dead)[number]) => boolean): Promise<string[]> {
    const mine = () => dead.filter((d) => d.queue === `${queuePrefix}${profile}` && match(d)).map((d) => d.body);
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
        retention: {
          maxLength: options.maxLength ?? testRetention.maxLength,
          messageTtlMs: options.messageTtlMs ?? testRetention.messageTtlMs,
          queueExpiresMs: options.queueExpiresMs ?? testRetention.queueExpiresMs,
        },
        nodeQueueExpiresMs: 60_000,
        prefetch: options.prefetch ?? 500,
        peerCheckIntervalMs: 0,
        log: logs.logger,
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
      return deadOf(profile, count, () => true);
    },
    // RabbitMQ's own timer: expired messages are dead-lettered (reason `expired`), which is the event awaited.
    async outliveMessageTtl(_node: NotificationBroker, profile: ProfileId, count: number) {
      await deadOf(profile, count, (d) => d.reason === 'expired');
    },
    // RabbitMQ tells nobody when it deletes an expired queue, and a passive declare would count as a use and
    // renew it. So a probe is published to the queue's name, mandatory: the broker returns it once the
    // queue is gone. Probes enqueued before that are deleted with the queue. Bounded: 200 probes.
    async outliveQueueExpiry(_node: NotificationBroker, profile: ProfileId) {
      const { channel } = await adminChannel();
      let returned = false;
      const onReturn = () => (returned = true);
      channel.on('return', onReturn);
      try {
        for (let probe = 0; probe < 200 && !returned; probe += 1) {
          channel.publish('', `${queuePrefix}${profile}`, Buffer.from('expiry probe'), { mandatory: true });
          await channel.waitForConfirms();
          if (!returned) await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        channel.off('return', onReturn);
      }
      if (!returned) throw new Error(`queue of ${profile} did not expire`);
    },
    retentionDrops(profile, count) {
      return logs.until((lines) => {
        const dropped = lines.filter((l) => l.msg === 'retention policy dropped a waiting message' && l.profileId === profile).length;
        return dropped >= count ? dropped : undefined;
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
