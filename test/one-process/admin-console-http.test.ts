import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
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
