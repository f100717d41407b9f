import { notifyProtocolSuite } from './notify-protocol.suite.js';

notifyProtocolSuite('memory', () => ({}));
