import { notifyProtocolSuite } from '../suites/notify-protocol.suite.js';
import { amqpUrl, testRetention } from '../helpers/rabbitmq.js';

notifyProtocolSuite('RabbitMQ', () => ({ amqpUrl, notify: { retention: testRetention } }));
