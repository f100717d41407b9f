import { RedisStatusStore } from '../../src/backends/redis/redis-status-store.js';
import { silentLogger } from '../../src/core/logger.js';
import { uniqueId } from '../helpers/gateway.js';
import { statusStoreContract } from './status-store.contract.js';

export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

statusStoreContract('redis', () => {
  const keyPrefix = `${uniqueId('test')}:`;
  return { create: () => new RedisStatusStore({ url: redisUrl, keyPrefix, log: silentLogger }), shared: true };
});
