import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LiveSnapshot } from '../../src/protocol/live-snapshot.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { publishOverHttp, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { join, TestClient } from '../helpers/ws-client.js';

describe('admin stats and console files over HTTP', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(() => gw.close());

  it('GET /api/admin/v1/stats needs an admin key and reports sockets and joined profiles', async () => {
    assert.equal((await fetch(`${gw.url}/api/admin/v1/stats`)).status, 401);
    const user = await fetch(`${gw.url}/api/admin/v1/stats`, { headers: { 'x-api-key': 'demo-user-key' } });
    assert.equal(user.status, 403);
    assert.deepEqual(await user.json(), { error: 'this API key does not have admin clearance' });

    const client = await TestClient.connect(`${gw.wsUrl}/`);
    assert.equal((await client.request(join('demo-token-alice'))).status, 200);
    const res = await fetch(`${gw.url}/api/admin/v1/stats`, { headers: { 'x-api-key': 'demo-admin-key' } });
    assert.equal(res.status, 200);
    const stats = (await res.json()) as { node: string; sockets: Record<string, number>; profiles: unknown[]; backends: Record<string, unknown> };
    assert.deepEqual(stats.sockets, { notify: 1, control: 0 });
    assert.deepEqual(stats.profiles, [{ profileId: 'alice', sockets: 1 }]);
    assert.equal(typeof stats.node, 'string');
    assert.deepEqual(Object.keys(stats.backends).sort(), ['broker', 'state']);
    await client.close();
  });

  it('serves the built console at /console/', async () => {
    const redirect = await fetch(`${gw.url}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/console/');
    const page = await fetch(`${gw.url}/console/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html);
    assert.ok(script, 'index.html references its bundle');
    const bundle = await fetch(`${gw.url}${script[1]}`);
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
  });
});

describe('admin stats: the live points behind the console charts', () => {
  it('gives per-interval rates and the delivery latency of each interval, not since start', async () => {
    const clock = new FakeClock(Date.now());
    const gw = await startGateway({}, { clock });
    const client = await TestClient.connect(`${gw.wsUrl}/`);
    try {
      // Every reading is prom-client's promises only: a turn of the event loop completes one.
      const nextPoint = async () => {
        clock.advance(2_000);
        await new Promise(setImmediate);
      };
      const live = async () => {
        const res = await fetch(`${gw.url}/api/admin/v1/stats`, { headers: { 'x-api-key': 'demo-admin-key' } });
        return ((await res.json()) as { live: LiveSnapshot }).live;
      };
      await new Promise(setImmediate); // the baseline reading, taken when the gateway started listening
      assert.deepEqual((await live()).t, [], 'no point before one interval has passed');

      assert.equal((await client.request(join('demo-token-alice'))).status, 200);
      for (const id of ['1', '2', '3', '4']) {
        await publishOverHttp(gw, 'alice', JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id, command_status: 1 } }));
        await client.nextMatching((frame) => frame.includes(`"id":"${id}"`));
      }
      await nextPoint();
      await nextPoint(); // an interval without traffic
      const points = await live();
      assert.equal(points.intervalMs, 2_000);
      assert.equal(points.t.length, 2);
      assert.equal(points.t[1]! - points.t[0]!, 2);
      assert.deepEqual(points.sockets.notify, [1, 1]);
      assert.deepEqual(points.messagesIn, [2, 0], '4 messages in 2 s, then none');
      assert.deepEqual(points.messagesOut, [2, 0]);
      assert.deepEqual(points.execs, [0, 0]);
      assert.ok(points.latencyP50Ms[0]! > 0 && points.latencyP99Ms[0]! >= points.latencyP50Ms[0]!, JSON.stringify(points));
      assert.deepEqual([points.latencyP50Ms[1], points.latencyP99Ms[1]], [null, null], 'no deliveries in the second interval: no latency');
    } finally {
      await client.close();
      await gw.close();
    }
  });
});
