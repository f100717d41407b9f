import { profileId } from '../../src/core/ids.js';
import { slowConsumerSuite } from '../suites/slow-consumer.suite.js';

slowConsumerSuite('memory', () => ({
  overrides: {},
  publisher: async (gw) => ({
    publish: (profile, body) => gw.gateway.broker.publish(profileId(profile), body),
    close: async () => {},
  }),
  // The in-memory broker goes with its gateway.
  cleanup: async () => {},
}));
