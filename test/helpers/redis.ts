import { Redis } from 'ioredis';

export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A short-lived admin connection for a test (never used to flush: the Redis is shared). */
export async function redisAdmin(): Promise<Redis> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  return redis;
}

/** Removes only this test run's keys. */
export async function deleteKeysWithPrefix(prefix: string): Promise<void> {
  const redis = await redisAdmin();
  try {
    for (let cursor = '0'; ; ) {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (found.length > 0) await redis.del(...found);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    await redis.quit();
  }
}

/** Closes our own connection(s) whose CLIENT SETNAME is `name` (server-side cut, as a network drop). */
export async function killClientByName(name: string): Promise<number> {
  const redis = await redisAdmin();
  try {
    const list = await redis.client('LIST');
    const ids = String(list)
      .split('\n')
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await redis.client('KILL', 'ID', id);
    return ids.length;
  } finally {
    await redis.quit();
  }
}
