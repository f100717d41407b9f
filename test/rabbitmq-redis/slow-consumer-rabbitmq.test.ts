import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { slowConsumerSuite } from '../suites/slow-consumer.suite.js';

/**
 * The slow-consumer proof on the real RabbitMQ: a plain amqplib backend publishes persistent messages into
 * `message_to_user.<profile>` (declared by the gateway on join) and waits for each batch's confirms. The
 * gateway deletes its own relay queues on close; the mailboxes are deleted here.
 */
slowConsumerSuite('RabbitMQ', () => ({
  overrides: { amqpUrl, notify: { retention: testRetention } },
  publisher: async () => {
    const backend = await plainAmqp({ noDelay: true });
    return {
      publish: (profile, body) =>
        new Promise<void>((resolve, reject) =>
          backend.channel.sendToQueue(`message_to_user.${profile}`, body, { persistent: true }, (err) => (err ? reject(err) : resolve())),
        ),
      close: () => backend.close(),
    };
  },
  cleanup: async (profiles) => {
    const admin = await plainAmqp();
    try {
      for (const profile of profiles) await admin.channel.deleteQueue(`message_to_user.${profile}`);
    } finally {
      await admin.close();
    }
  },
}));
