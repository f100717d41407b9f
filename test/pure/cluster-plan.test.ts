import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { clusterRefusal, currentWorker, workerCount, workerNodeId } from '../../src/cluster/cluster-plan.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';

describe('workers configuration', () => {
  it('reads WORKERS as a count or auto, and refuses anything else naming the variable', () => {
    assert.equal(loadConfig({}).config.workers, 1);
    assert.equal(loadConfig({ WORKERS: '4' }).config.workers, 4);
    assert.equal(workerCount(loadConfig({ WORKERS: 'auto' }).config), availableParallelism());
    for (const bad of ['0', '-1', '1.5', 'all']) {
      assert.throws(() => loadConfig({ WORKERS: bad }), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('workers (from WORKERS): ')), bad);
    }
  });

  it('needs RabbitMQ and Redis only with more than one worker', () => {
    const amqpUrl = 'amqp://127.0.0.1';
    const redisUrl = 'redis://127.0.0.1';
    assert.equal(clusterRefusal({ workers: 1 }, 1), undefined);
    assert.equal(clusterRefusal({ workers: 'auto' }, 1), undefined);
    assert.equal(clusterRefusal({ workers: 2, amqpUrl, redisUrl }, 2), undefined);
    assert.match(clusterRefusal({ workers: 2, redisUrl }, 2)!, /^workers 2 needs RabbitMQ \(AMQP_URL\): /);
    assert.match(clusterRefusal({ workers: 'auto', amqpUrl }, 8)!, /^workers auto \(8\) needs Redis \(REDIS_URL\): /);
  });

  it('names worker n after the base node id, the same on every restart', () => {
    assert.equal(workerNodeId('gw-a', 3), 'gw-a-w3');
    assert.deepEqual(currentWorker({ SWITCHBOARD_WORKER: '2', SWITCHBOARD_WORKERS: '3' }), { index: 2, count: 3 });
    assert.equal(currentWorker({}), undefined);
    assert.equal(currentWorker({ SWITCHBOARD_WORKER: '4', SWITCHBOARD_WORKERS: '3' }), undefined);
  });
});
