import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker } from '../../src/backends/memory/memory-broker.js';
import { GatewayError } from '../../src/core/errors.js';
import { profileId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import type { TokenGrant, TokenVerifier } from '../../src/core/token-verifier.js';
import { NotifySession } from '../../src/notify/notify-session.js';
import { ProfileHub } from '../../src/notify/profile-hub.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeConnection } from '../helpers/fake-connection.js';

/** Tokens whose answers the test changes while a socket is joined. */
class ScriptedVerifier implements TokenVerifier {
  readonly kind = 'scripted';
  readonly grants = new Map<string, TokenGrant>();
  async verify(token: string): Promise<TokenGrant> {
    const grant = this.grants.get(token);
    if (!grant) throw new GatewayError('unauthorized', 'Invalid authorization token.');
    return grant;
  }
}

async function setup() {
  const clock = new FakeClock();
  const broker = new MemoryBroker({ maxLength: 10, messageTtlMs: 60_000, queueExpiresMs: 600_000 }, clock, silentLogger);
  await broker.start();
  const verifier = new ScriptedVerifier();
  const connection = new FakeConnection();
  const session = new NotifySession(
    {
      hub: new ProfileHub(broker, silentLogger),
    verifier,
    brokerAvailable: () => true,
    clock,
    log: silentLogger,
    metrics: new GatewayMetrics(),
    options: { joinDeadlineMs: 1_000, tokenRevalidateMs: 5_000, requestsPerSecond: 100, ackWindow: 3, ackTimeoutMs: 2_000 },
    },
    connection,
  );
  const settle = () => new Promise((r) => setImmediate(r));
  const lastReply = () => JSON.parse(connection.frames.at(-1)!);
  return { clock, broker, verifier, connection, session, settle, lastReply };
}

const joinFrame = (token: string) => JSON.stringify({ action: 'joinChannel', data: { authorizationToken: token } });

describe('notification session', () => {
  it('closes with 1008 when nothing joined within the deadline', async () => {
    const { clock, connection } = await setup();
    clock.advance(999);
    assert.equal(connection.closedWith, undefined);
    clock.advance(1);
    assert.equal(connection.closedWith, 1008);
  });

  it('leaves the channel and tells the client when the token expires, then accepts a fresh token', async () => {
    const { clock, verifier, connection, session, settle, lastReply, broker } = await setup();
    verifier.grants.set('old', { profileId: profileId('p'), expiresAt: clock.now() + 3_000 });
    session.onText(joinFrame('old'));
    await settle();
    assert.equal(lastReply().status, 200);
    clock.advance(3_000);
    assert.deepEqual(lastReply(), { status: 401, data: { channelId: 'p', message: 'Authorization token expired; channel left.' } });
    await broker.publish(profileId('p'), Buffer.from('{"data":{"type":"T","id":"after"}}'));
    assert.ok(!connection.frames.some((f) => f.includes('after')), 'nothing delivered after the channel was left');
    verifier.grants.set('fresh', { profileId: profileId('p') });
    const before = connection.frames.length;
    session.onText(joinFrame('fresh'));
    await settle();
    await settle();
    const [reply, delivered] = connection.frames.slice(before);
    assert.equal(JSON.parse(reply!).status, 200);
    assert.equal(delivered, '{"data":{"type":"T","id":"after"}}', 'the message that waited arrives after the join reply');
    assert.equal(connection.closedWith, undefined, 'the socket stayed open');
  });

  it('leaves the channel when revalidation finds the token revoked', async () => {
    const { clock, verifier, session, settle, lastReply } = await setup();
    verifier.grants.set('t', { profileId: profileId('p') });
    session.onText(joinFrame('t'));
    await settle();
    verifier.grants.delete('t');
    clock.advance(5_000);
    await settle();
    assert.equal(lastReply().status, 401);
    assert.equal(lastReply().data.channelId, 'p');
  });

  it('counts every frame, pings and malformed ones too, against the rate limit, and closes a socket that keeps sending garbage with 1008', async () => {
    const { session, connection, clock } = await setup();
    // 100/s with a burst of 200: the first 200 pings are answered.
    for (let i = 0; i < 200; i++) session.onText('ping');
    assert.equal(connection.frames.filter((f) => f === 'pong').length, 200);
    for (let i = 0; i < 100; i++) session.onText('{garbage');
    assert.equal(connection.closedWith, undefined, 'refused (429), not yet closed');
    assert.ok(connection.frames.slice(200).every((f) => JSON.parse(f).status === 429));
    session.onText('ping');
    assert.notEqual(connection.frames.at(-1), 'pong', 'a ping over the limit is not answered');
    clock.advance(500);
    session.onText('{garbage');
    assert.equal(JSON.parse(connection.frames.at(-1)!).status, 400, 'half a second later the limit has room again');
    for (let i = 0; i < 5_000 && connection.closedWith === undefined; i++) session.onText('{garbage');
    assert.equal(connection.closedWith, 1008);
    assert.ok(connection.frames.length < 800, `${connection.frames.length} replies for the flood, not 5,000`);
  });
});
