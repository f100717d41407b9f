import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { HttpTokenVerifier } from '../../src/backends/tokens/http-verifier.js';
import { GatewayError } from '../../src/core/errors.js';
import { FakePrivicore } from '../helpers/fake-privicore.js';
import { startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { join, TestClient } from '../helpers/ws-client.js';

const rejectsWith = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (err: unknown) => err instanceof GatewayError && err.code === code);

describe('http token verifier (Privicore API)', () => {
  let fake: FakePrivicore;
  let verifier: HttpTokenVerifier;
  const token = `T-${uniqueId('http')}`;

  before(async () => {
    fake = await FakePrivicore.start();
    // Generous: a loaded CI machine must not turn a fast local answer into a timeout.
    verifier = new HttpTokenVerifier({ kind: 'http', baseUrl: `${fake.baseUrl}/`, timeoutMs: 5_000 });
  });
  after(() => fake.stop());
  beforeEach(() => {
    fake.mode = 'ok';
    fake.add(token, 'profile-1', 60_000);
  });

  it('resolves the profile id and the expiry, sending the token only in X-DPT-AUTHORIZATION', async () => {
    const before = Date.now();
    const grant = await verifier.verify(token);
    assert.equal(grant.profileId, 'profile-1');
    assert.ok(grant.expiresAt! >= before + 59_000 && grant.expiresAt! <= Date.now() + 60_000, String(grant.expiresAt));
    const seen = fake.requests.filter((r) => r.token === token);
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url}`).sort(), [
      'GET /api/profile/retrieve-profile-id',
      'POST /api/profile/authorization-token/expiry',
    ]);
    assert.ok(fake.requests.every((r) => !r.url.includes(token)), 'the token is never in a URL');
  });

  it('maps 401 from the API to unauthorized', async () => {
    await rejectsWith(verifier.verify('T-unknown'), 'unauthorized');
    fake.revoke(token);
    await rejectsWith(verifier.verify(token), 'unauthorized');
  });

  it('maps a slow answer to unavailable within the timeout', async () => {
    fake.mode = 'slow';
    const impatient = new HttpTokenVerifier({ kind: 'http', baseUrl: `${fake.baseUrl}/`, timeoutMs: 500 });
    const started = Date.now();
    await rejectsWith(impatient.verify(token), 'unavailable');
    assert.ok(Date.now() - started < 10_000, 'gave up at the configured timeout instead of waiting for an answer that never comes');
  });

  it('maps a 500 to unavailable', async () => {
    fake.mode = 'error500';
    await rejectsWith(verifier.verify(token), 'unavailable');
  });

  it('maps a body that is not JSON, or JSON of the wrong shape, to unavailable', async () => {
    fake.mode = 'garbage';
    await rejectsWith(verifier.verify(token), 'unavailable');
    fake.mode = 'wrong-shape';
    await rejectsWith(verifier.verify(token), 'unavailable');
  });

  it('maps a refused connection to unavailable', async () => {
    const closed = await FakePrivicore.start();
    const url = closed.baseUrl;
    await closed.stop();
    await rejectsWith(new HttpTokenVerifier({ kind: 'http', baseUrl: url, timeoutMs: 500 }).verify(token), 'unavailable');
  });
});

describe('joining through the http token verifier', () => {
  let fake: FakePrivicore;
  let gw: RunningGateway;
  const profile = uniqueId('hp');
  const token = `T-${uniqueId('join')}`;

  before(async () => {
    fake = await FakePrivicore.start();
    fake.add(token, profile);
    gw = await startGateway({ tokens: { kind: 'http', baseUrl: fake.baseUrl, timeoutMs: 5_000 }, notify: { tokenCacheMs: 0 } });
  });
  after(async () => {
    await gw.close();
    await fake.stop();
  });

  it('joins with a valid token, answers 401 for a refused one and 503 while the API is down', async () => {
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.deepEqual(await client.request(join('T-nope', 'a')), {
        correlationId: 'a',
        status: 401,
        data: { message: 'Invalid authorization token.' },
      });
      fake.mode = 'error500';
      const down = await client.request(join(token, 'b'));
      assert.equal(down.status, 503);
      fake.mode = 'ok';
      const joined = await client.request(join(token, 'c'));
      assert.equal(joined.status, 200);
      assert.equal(joined.data.channelId, profile);
    } finally {
      await client.close();
    }
  });
});
