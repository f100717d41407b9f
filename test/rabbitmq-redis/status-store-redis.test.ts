import { after } from 'node:test';
import { RedisStatusStore } from '../../src/backends/redis/redis-status-store.js';
import { silentLogger } from '../../src/core/logger.js';
import { uniqueId } from '../helpers/gateway.js';
import { deleteKeysWithPrefix, redisUrl } from '../helpers/redis.js';
import { statusStoreContract } from '../suites/status-store.contract.js';

const keyPrefix = `${uniqueId('test')}:`;
after(() => deleteKeysWithPrefix(keyPrefix));

statusStoreContract('redis', () => ({ create: () => new RedisStatusStore({ url: redisUrl, keyPrefix, log: silentLogger }), shared: true }));
