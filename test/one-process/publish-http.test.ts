import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GatewayError } from '../../src/core/errors.js';
import { connectPublisher } from '../../src/publish/connect-publisher.js';
import { uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { startJoinedGateway } from '../helpers/joined-gateway.js';
import type { TestClient } from '../helpers/ws-client.js';

describe('HTTP publish endpoint and the publisher over HTTP (memory broker)', () => {
  let gw: RunningGateway;
  const profile = uniqueId('pub');
  let client: TestClient;

  before(async () => {
    ({ gw, client } = await startJoinedGateway(profile));
  });
  after(async () => {
    await client.close();
    await gw.close();
  });

  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const valid = '{"data":{"type":"X-DPT-CAB-ID","id":"h1","command_status":2,"body":"ok"}}';

  it('refuses a missing or unknown key (401), a key without the publish right (403)', async () => {
    const path = `/api/notify/v1/profiles/${profile}/messages`;
    const missing = await post(path, valid, {});
    assert.equal(missing.status, 401);
    assert.match((await missing.json()).error, /missing API key/);
    assert.equal((await post(path, valid, { 'x-api-key': 'not-a-key-at-all' })).status, 401);
    assert.equal((await post(path, valid, { authorization: 'Bearer not-a-key-at-all' })).status, 401);
    const user = await post(path, valid, { 'x-api-key': 'demo-user-key' });
    assert.equal(user.status, 403);
    assert.match((await user.json()).error, /may not publish/);
    await assertNothingDelivered();
  });

  it('refuses a malformed body and a bad profile id (400)', async () => {
    const key = { 'x-api-key': 'demo-admin-key' };
    const path = `/api/notify/v1/profiles/${profile}/messages`;
    for (const body of ['not json', '[1]', '{"data":{"type":"X-DPT-CAB-ID"}}', '{"data":{"id":"1"}}', '{"nodata":true}']) {
      const res = await post(path, body, key);
      assert.equal(res.status, 400, body);
      assert.ok(typeof (await res.json()).error === 'string');
    }
    for (const bad of ['has%20space', 'x'.repeat(201), 'semi%3Bcolon']) {
      const res = await post(`/api/notify/v1/profiles/${bad}/messages`, valid, key);
      assert.equal(res.status, 400, bad);
      assert.match((await res.json()).error, /profile id/);
    }
    await assertNothingDelivered();
  });

  it('accepts the key as X-API-Key or Bearer and the joined client receives the body unchanged', async () => {
    const a = '{"data":{"type":"X-DPT-CAB-ID","id":"h2","command_status":1,"body":"pending"}}';
    const b = '{ "data": {"type":"X-DPT-CAB-ID","id":"h3","command_status":2,"body":"done"} }';
    assert.equal((await post(`/api/notify/v1/profiles/${profile}/messages`, a, { 'x-api-key': 'demo-admin-key' })).status, 202);
    assert.equal((await post(`/api/notify/v1/profiles/${profile}/messages`, b, { authorization: 'Bearer demo-admin-key' })).status, 202);
    assert.equal(await client.next(), a);
    assert.equal(await client.next(), b);
  });

  it('publishes through the typed API over HTTP', async () => {
    const publisher = connectPublisher({ gatewayUrl: gw.url, apiKey: 'demo-admin-key' });
    await publisher.publishCommandStatus(profile, { id: 'c-1', status: 3, body: 'Storage full' });
    await publisher.publishDataDownload(profile, { id: 'd-1', dataContext: 'ctx', outputType: 1, body: 'https://download.example/x' });
    assert.deepEqual(JSON.parse(await client.next()), { data: { type: 'X-DPT-CAB-ID', id: 'c-1', command_status: 3, body: 'Storage full' } });
    assert.deepEqual(JSON.parse(await client.next()), {
      data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'd-1', data_context: 'ctx', output_type: 1, body: 'https://download.example/x' },
    });
  });

  it('reports the gateway refusing the key, and a gateway that is not there', async () => {
    const user = connectPublisher({ gatewayUrl: gw.url, apiKey: 'demo-user-key' });
    await assert.rejects(user.publish(profile, valid), (e: unknown) => e instanceof GatewayError && e.code === 'forbidden');
    const wrong = connectPublisher({ gatewayUrl: gw.url, apiKey: 'wrong-key-123' });
    await assert.rejects(wrong.publish(profile, valid), (e: unknown) => e instanceof GatewayError && e.code === 'unauthorized');
    const nowhere = connectPublisher({ gatewayUrl: 'http://127.0.0.1:1', apiKey: 'demo-admin-key' });
    await assert.rejects(nowhere.publish(profile, valid), (e: unknown) => e instanceof GatewayError && e.code === 'unavailable');
    await assertNothingDelivered();
  });

  async function assertNothingDelivered(): Promise<void> {
    client.send('ping');
    assert.equal(await client.next(), 'pong');
  }
});
