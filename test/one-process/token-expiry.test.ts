import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { FakePrivicore } from '../helpers/fake-privicore.js';
import { publishOverHttp, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { join, leave, TestClient } from '../helpers/ws-client.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs, type LogCapture } from '../helpers/log-capture.js';

const secret = 'expiry-test-secret-of-32-characters';
// jose checks `exp` against the real time at verification; the gateway times the expiry on its clock.
const expIn = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;
const signFor = (profile: string, expiresInSeconds: number, exp = expIn(expiresInSeconds)) =>
  new SignJWT({ sub: profile, nonce: Math.random() })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));

const expiredFrame = (profile: string) => ({
  status: 401,
  data: { channelId: profile, message: 'Authorization token expired; channel left.' },
});

const message = (id: string) => JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id, command_status: 2, body: 'done' } });

/** Proves nothing else is on its way: a ping's pong comes after anything already sent to the socket. */
async function assertNothingPending(client: TestClient): Promise<void> {
  client.send('ping');
  const next = await client.next();
  assert.equal(next, 'pong', `expected nothing before the pong, got ${next}`);
}

describe('token expiry while joined (jwt)', () => {
  let gw: RunningGateway;
  const profile = uniqueId('exp');
  // The gateway's timers run on this clock: an expiry comes when the test moves it, not after a wait.
  const clock = new FakeClock(Date.now());

  before(async () => {
    gw = await startGateway({ tokens: { kind: 'jwt', secret } }, { clock });
  });
  after(() => gw.close());

  it('leaves the channel and tells the socket, which stays open and may join again with a fresh token', async () => {
    const client = await TestClient.connect(gw.wsUrl);
    try {
      const exp = expIn(2);
      assert.equal((await client.request(join(await signFor(profile, 2, exp)))).status, 200);
      await publishOverHttp(gw, profile, message('before'));
      assert.equal(await client.next(), message('before'));

      clock.advance(exp * 1000 - clock.now());
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
      await publishOverHttp(gw, profile, message('while-left'));
      await assertNothingPending(client);

      const rejoined = await client.request(join(await signFor(profile, 600), 'again'));
      assert.deepEqual(rejoined, { correlationId: 'again', status: 200, data: { channelId: profile, message: 'Successfully joined profile channel.' } });
      assert.equal(await client.next(), message('while-left'), 'the message kept while nobody was joined arrives after the re-join');
    } finally {
      await client.close();
    }
  });
});

describe('token expiry, revocation and an unavailable token service while joined (http)', () => {
  let fake: FakePrivicore;
  let gw: RunningGateway;
  // Expiries, revalidations and the token cache run on this clock, which the fake API counts from too.
  const clock = new FakeClock(Date.now());

  before(async () => {
    fake = await FakePrivicore.start(() => clock.now());
    gw = await startGateway(
      {
        tokens: { kind: 'http', baseUrl: fake.baseUrl, timeoutMs: 5_000 },
        notify: { tokenRevalidateMs: 1_000, tokenCacheMs: 200 },
      },
      { clock },
    );
  });
  after(async () => {
    await gw.close();
    await fake.stop();
  });

  it('expires the channel at the expiry the API reported', async () => {
    const profile = uniqueId('hexp');
    const token = `T-${uniqueId('soon')}`;
    fake.add(token, profile, 1_500);
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.equal((await client.request(join(token))).status, 200);
      clock.advance(1_500);
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
      await assertNothingPending(client);
    } finally {
      await client.close();
    }
  });

  it('leaves the channel of a revoked token at the next revalidation', async () => {
    const profile = uniqueId('rev');
    const token = `T-${uniqueId('revoked')}`;
    const fresh = `T-${uniqueId('fresh')}`;
    fake.add(token, profile);
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.equal((await client.request(join(token))).status, 200);
      await publishOverHttp(gw, profile, message('m1'));
      assert.equal(await client.next(), message('m1'));

      fake.revoke(token);
      clock.advance(1_000);
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
      await publishOverHttp(gw, profile, message('m2'));
      await assertNothingPending(client);

      fake.add(fresh, profile);
      assert.equal((await client.request(join(fresh))).status, 200);
      assert.equal(await client.next(), message('m2'));
    } finally {
      await client.close();
    }
  });

  it('keeps the channel while the token service is down during a revalidation, and still expires it on time', async () => {
    const profile = uniqueId('down');
    const token = `T-${uniqueId('kept')}`;
    fake.add(token, profile, 3_000);
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.equal((await client.request(join(token))).status, 200);
      fake.mode = 'error500';
      // One revalidation, against the failing service: it reaches the service at least once (it may give
      // up at its first failing call), and the channel stays.
      const calls = fake.callsFor(token);
      clock.advance(1_000);
      await fake.waitForCalls(token, calls + 1);
      await publishOverHttp(gw, profile, message('still-joined'));
      assert.equal(await client.next(), message('still-joined'));
      // The expiry the API reported at join still applies although the service no longer answers.
      clock.advance(2_000);
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
    } finally {
      fake.mode = 'ok';
      await client.close();
    }
  });
});

/** Every secret the test used must be absent from everything the gateway logged. */
function assertNoSecretIn(logs: LogCapture, secrets: string[]): void {
  const text = logs.lines.map((line) => JSON.stringify(line)).join('\n');
  for (const secretText of secrets) assert.ok(!text.includes(secretText), `a log line contains a secret: ${secretText.slice(0, 12)}…`);
}

describe('a token never appears in a log line', () => {
  const logs = captureLogs('debug');
  const clock = new FakeClock(Date.now());
  let gw: RunningGateway;
  const profile = uniqueId('log');

  before(async () => {
    gw = await startGateway({ tokens: { kind: 'jwt', secret }, logLevel: 'debug' }, { logger: logs.logger, clock });
  });
  after(() => gw.close());

  it('across join, bad joins, leave, expiry and publishing', async () => {
    const exp = expIn(2);
    const good = await signFor(profile, 2, exp);
    const fresh = await signFor(profile, 600);
    const tampered = `${good.slice(0, -4)}AAAA`;
    const opaque = `opaque-${uniqueId('secret')}`;
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.equal((await client.request(join(tampered))).status, 401);
      assert.equal((await client.request(join(opaque))).status, 401);
      assert.equal((await client.request(join(good))).status, 200);
      assert.equal((await client.request({ action: 'leaveChannel', data: { authorizationToken: opaque } })).status, 401);
      assert.equal((await client.request(`{"action":"joinChannel","data":{"authorizationToken":"${good}"`)).status, 400);
      clock.advance(exp * 1000 - clock.now());
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
      assert.equal((await client.request(join(fresh))).status, 200);
      assert.equal((await client.request(leave(profile))).status, 200);
      const wrongKey = `key-${uniqueId('k')}`;
      const res = await fetch(`${gw.url}/api/notify/v1/profiles/${profile}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': wrongKey },
        body: message('x'),
      });
      assert.equal(res.status, 401);
      await publishOverHttp(gw, profile, message('y'));

      // The log is not empty: it recorded what happened, by profile id.
      assert.ok(logs.lines.some((l) => l.msg === 'joined' && l.profileId === profile));
      assert.ok(logs.lines.some((l) => l.cause === 'expired'));
      assert.ok(logs.lines.some((l) => l.msg === 'request refused'));
      assertNoSecretIn(logs, [good, fresh, tampered, opaque, wrongKey, 'demo-admin-key', good.split('.')[2]!, fresh.split('.')[2]!]);
    } finally {
      await client.close();
    }
  });
});

describe('a token never appears in a log line (http verifier failures)', () => {
  const logs = captureLogs('debug');
  // The expiry runs on this clock, which the fake API counts from too; the verifier's request timeout is
  // a real one (the "slow" service below is a real socket that does not answer).
  const clock = new FakeClock(Date.now());
  let fake: FakePrivicore;
  let gw: RunningGateway;

  before(async () => {
    fake = await FakePrivicore.start(() => clock.now());
    gw = await startGateway(
      { tokens: { kind: 'http', baseUrl: fake.baseUrl, timeoutMs: 1_500 }, notify: { tokenCacheMs: 0 } },
      { logger: logs.logger, clock },
    );
  });
  after(async () => {
    await gw.close();
    await fake.stop();
  });

  it('across refused, unavailable, timed-out, garbage and successful verifications', async () => {
    const profile = uniqueId('hlog');
    const token = `T-${uniqueId('hsecret')}`;
    const unknown = `T-${uniqueId('hunknown')}`;
    fake.add(token, profile, 1_000);
    const client = await TestClient.connect(gw.wsUrl);
    try {
      assert.equal((await client.request(join(unknown))).status, 401);
      for (const mode of ['error500', 'slow', 'garbage', 'wrong-shape'] as const) {
        fake.mode = mode;
        assert.equal((await client.request(join(token))).status, 503, mode);
      }
      fake.mode = 'ok';
      assert.equal((await client.request(join(token))).status, 200);
      clock.advance(1_000);
      assert.deepEqual(JSON.parse(await client.next()), expiredFrame(profile));
      assert.ok(logs.lines.some((l) => l.msg === 'token service unavailable'));
      assert.ok(logs.lines.some((l) => l.msg === 'joined' && l.profileId === profile));
      assertNoSecretIn(logs, [token, unknown]);
    } finally {
      fake.mode = 'ok';
      await client.close();
    }
  });
});
