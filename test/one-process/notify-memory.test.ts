import { notifyProtocolSuite } from '../suites/notify-protocol.suite.js';

notifyProtocolSuite('memory', () => ({}));
