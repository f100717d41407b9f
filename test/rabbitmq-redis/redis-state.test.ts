import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisStatusStore } from '../../src/backends/redis/redis-status-store.js';
import type { BackendState } from '../../src/core/backend-state.js';
import type { Principal } from '../../src/core/credentials.js';
import { moduleId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { Changes } from '../suites/status-store.contract.js';
import { fleetSettled, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { scrape, value } from '../helpers/prometheus.js';
import { deleteKeysWithPrefix, killClientByName, redisAdmin, redisUrl } from '../helpers/redis.js';

const caller: Principal = { id: 'test', kind: 'api-key', clearance: 'admin', canPublish: false, systems: ['*'], zones: [], scopes: ['control'] };

describe('Redis status store in the gateway', () => {
  const keyPrefix = `${uniqueId('state')}:`;
  const nodeA = uniqueId('node-a');
  let a: RunningGateway;
  let b: RunningGateway;

  before(async () => {
    const control = { redisKeyPrefix: keyPrefix };
    [a, b] = await Promise.all([
      startGateway({ redisUrl, nodeId: nodeA, control }),
      startGateway({ redisUrl, nodeId: uniqueId('node-b'), control }),
    ]);
    await fleetSettled([a, b]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await deleteKeysWithPrefix(keyPrefix);
  });

  it('writes the PlaceOS layout: status hash, system lookup hash', async () => {
    await a.gateway.drivers.exec(moduleId('mod-display-2'), 'volume', [12], caller);
    const redis = await redisAdmin();
    try {
      assert.equal(await redis.hget(`${keyPrefix}status/mod-display-2`, 'volume'), '12');
      assert.deepEqual(await redis.hgetall(`${keyPrefix}system/sys-demo`), {
        'Display/1': 'mod-display-1',
        'Display/2': 'mod-display-2',
        'Lights/1': 'mod-lights-1',
      });
    } finally {
      await redis.quit();
    }
    const health = (await (await fetch(`${a.url}/health`)).json()) as { backends: Record<string, unknown> };
    assert.deepEqual(health.backends.state, { kind: 'redis', state: 'up' });
  });

  it('a watch on node A sees an exec made through node B', async () => {
    const changes = new Changes();
    const stop = await a.gateway.store.watch(moduleId('mod-lights-1'), 'level', changes.onChange);
    await b.gateway.drivers.exec(moduleId('mod-lights-1'), 'set_level', [65], caller);
    assert.deepEqual(await changes.until(1), ['65']);
    await stop();
  });

  it('reconnects after its connections are cut, reports the state, counts the reconnect, and watches go on', async () => {
    const mod = moduleId('mod-display-1');
    const changes = new Changes();
    await a.gateway.store.watch(mod, 'input', changes.onChange);
    const states: BackendState[] = [];
    const store = a.gateway.store as RedisStatusStore;
    const back = new Promise<void>((resolve) =>
      store.onStateChange((state) => {
        states.push(state);
        if (state === 'up') resolve();
      }),
    );
    const before = value(await scrape(a.url), 'switchboard_backend_reconnects_total{backend="state"}');
    assert.equal(await killClientByName(`switchboard-${nodeA}:sub`), 1);
    // A change made through node B while node A's subscriber is away (it waits before reconnecting).
    await b.gateway.drivers.exec(mod, 'input', ['hdmi2'], caller);
    await back;
    assert.equal(states[0], 'connecting');
    assert.equal(value(await scrape(a.url), 'switchboard_backend_reconnects_total{backend="state"}'), before + 1);
    assert.equal(value(await scrape(a.url), 'switchboard_backend_up{backend="state"}'), 1);
    assert.deepEqual(await changes.until(1), ['"hdmi2"'], 'the change made during the cut reaches the watcher');

    await b.gateway.drivers.exec(mod, 'input', ['hdmi3'], caller);
    assert.deepEqual(await changes.until(2), ['"hdmi2"', '"hdmi3"'], 'the subscription was restored, nothing twice');
  });

  it('a store that cannot reach Redis refuses to start with "unavailable"', async () => {
    const store = new RedisStatusStore({ url: 'redis://127.0.0.1:1', log: silentLogger });
    await assert.rejects(store.start(), { code: 'unavailable', message: /^status store: cannot reach Redis/ });
    await store.close();
    assert.equal(store.state(), 'down');
  });
});
