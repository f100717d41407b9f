import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { after, before, describe, it } from 'node:test';
import { demoApiKeys, demoControl, uniqueId } from '../helpers/gateway.js';
import { type GatewayProcess, processFleetSettled, startGatewayProcess } from '../helpers/gateway-process.js';
import { controlPath } from '../helpers/control-gateway.js';
import { TestClient } from '../helpers/ws-client.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const meta = '"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"}';

/** Issue 3 "Must show 5": two gateway processes on one Redis; bound on A, exec through B, the notify arrives on A. */
describe('control channel across two gateway processes on Redis', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  const clients: TestClient[] = [];
  const keyPrefix = `${uniqueId('ctl')}:`;

  before(async () => {
    // A key prefix of its own, so concurrent test runs on the shared Redis never see each other's state.
    const config = { apiKeys: demoApiKeys, control: { ...demoControl(), redisKeyPrefix: keyPrefix } };
    [a, b] = await Promise.all([startGatewayProcess(config, { REDIS_URL: redisUrl }), startGatewayProcess(config, { REDIS_URL: redisUrl })]);
    // Right after a fleet starts, modules move to the nodes that rank first for them (and start again).
    await processFleetSettled([a, b]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all([a?.stop(), b?.stop()]);
    // Remove only this run's keys (never a flush: the Redis is shared).
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const keys: string[] = [];
    for (let cursor = '0'; ; ) {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      keys.push(...found);
      cursor = next;
      if (cursor === '0') break;
    }
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  const connect = async (gw: GatewayProcess) => {
    const c = await TestClient.connect(`${gw.wsUrl}${controlPath}?api-key=demo-admin-key`);
    clients.push(c);
    return c;
  };

  it('a client bound on node A gets the notify of an exec made through node B', async () => {
    const onA = await connect(a);
    const onB = await connect(b);
    onB.send({ id: 1, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'power', args: [false] });
    assert.match(await onB.next(), /^\{"id":1,"type":"success","value":false/);

    onA.send({ id: 7, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' });
    assert.equal(await onA.next(), `{"id":7,"type":"success",${meta}}`);
    assert.equal(await onA.next(), `{"id":7,"type":"notify","value":false,${meta}}`);

    onB.send({ id: 2, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'power', args: [true] });
    assert.equal(await onB.next(), `{"id":2,"type":"success","value":true,${meta},"code":200}`);
    assert.equal(await onA.next(), `{"id":7,"type":"notify","value":true,${meta}}`);

    // The state is shared: node A's REST sees what node B set.
    const res = await fetch(`${a.url}/api/engine/v2/systems/sys-demo/Display_1/power`, { headers: { 'X-API-Key': 'demo-admin-key' } });
    assert.equal(await res.text(), 'true');
  });
});
