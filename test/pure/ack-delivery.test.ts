import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker } from '../../src/backends/memory/memory-broker.js';
import { profileId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import type { TokenGrant, TokenVerifier } from '../../src/core/token-verifier.js';
import { NotifySession } from '../../src/notify/notify-session.js';
import { ProfileHub } from '../../src/notify/profile-hub.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { ackModeFrame } from '../../src/notify/ack-frame.js';
import { bareAckSeq, parseNotifyRequest } from '../../src/protocol/notify.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeConnection } from '../helpers/fake-connection.js';

const alice = profileId('alice');
const verifier: TokenVerifier = {
  kind: 'static',
  verify: async (): Promise<TokenGrant> => ({ profileId: alice }),
};
const message = (id: string) => `{"data":{"type":"T","id":"${id}"}}`;
/** Lets the memory broker's and the sessions' promise chains run (redeliveries wait for setImmediate). */
const settle = async (turns = 4) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
};

async function setup(options: { ackWindow?: number; ackResumeMs?: number } = {}) {
  const clock = new FakeClock();
  const metrics = new GatewayMetrics();
  const broker = new MemoryBroker({ maxLength: 1_000, messageTtlMs: 600_000, queueExpiresMs: 600_000 }, clock, silentLogger, metrics, 50);
  await broker.start();
  const hub = new ProfileHub(broker, silentLogger, metrics, { ackResumeMs: options.ackResumeMs ?? 0, clock });
  const deps = {
    hub,
    verifier,
    brokerAvailable: () => true,
    clock,
    log: silentLogger,
    metrics,
    options: { joinDeadlineMs: 60_000, tokenRevalidateMs: 600_000, requestsPerSecond: 100, ackWindow: options.ackWindow ?? 3, ackTimeoutMs: 2_000 },
  };
  /** A socket joined to alice, in ack mode or plain. */
  const socket = async (ack: boolean) => {
    const connection = new FakeConnection();
    const session = new NotifySession(deps, connection);
    session.onText(JSON.stringify({ action: 'joinChannel', correlationId: 'j', data: { authorizationToken: 't', ...(ack && { ack: true }) } }));
    await settle();
    const close = () => {
      connection.close(1006);
      session.onClose();
    };
    return { connection, session, close, reply: JSON.parse(connection.frames[0]!) };
  };
  const publish = async (...ids: string[]) => {
    for (const id of ids) await broker.publish(alice, Buffer.from(message(id)));
    await settle();
  };
  /** Ids of the notifications a socket received, in order, unwrapping ack-mode frames. */
  const ids = (connection: FakeConnection) =>
    connection.frames
      .map((f) => JSON.parse(f))
      .filter((f) => f.status === undefined)
      .map((f) => (f.seq !== undefined ? `${f.seq}:${f.message.data.id}` : f.data.id));
  const gauge = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  return { clock, broker, hub, socket, publish, ids, gauge };
}

describe('acknowledged delivery: wire', () => {
  it('parses ack requests and the join flag, and refuses bad ones', () => {
    assert.deepEqual(parseNotifyRequest('{"action":"ack","seq":7}'), { ok: true, request: { action: 'ack', seq: 7 } });
    assert.deepEqual(parseNotifyRequest('{"action":"joinChannel","data":{"authorizationToken":"T","ack":true}}'), {
      ok: true,
      request: { action: 'joinChannel', authorizationToken: 'T', ack: true },
    });
    for (const bad of ['{"action":"ack"}', '{"action":"ack","seq":0}', '{"action":"ack","seq":1.5}', '{"action":"ack","seq":"3"}']) {
      assert.deepEqual(parseNotifyRequest(bad), { ok: false, message: 'Field "seq" must be a positive integer.' }, bad);
    }
    assert.equal((parseNotifyRequest('{"action":"joinChannel","data":{"authorizationToken":"T","ack":"yes"}}') as { message: string }).message, 'Field "ack" must be true or false.');
  });

  it("reads the SDK's ack without JSON.parse, and leaves every other text to the full parse", () => {
    const texts = [
      '{"action":"ack","seq":1}', '{"action":"ack","seq":907}', '{"action":"ack","seq":123456789012345}',
      '{"action":"ack","seq":0}', '{"action":"ack","seq":07}', '{"action":"ack","seq":-1}', '{"action":"ack","seq":1.5}',
      '{"action":"ack","seq":}', '{"action":"ack","seq":1 }', '{"action":"ack","seq":1}}', '{"action":"ack","seq":1e3}',
      '{"action":"ack","seq":"3"}', '{"action":"ack", "seq":3}', '{"seq":3,"action":"ack"}', '{"action":"ack","seq":1234567890123456}',
    ];
    for (const text of texts) {
      const seq = bareAckSeq(text);
      if (seq === undefined) continue;
      assert.deepEqual(parseNotifyRequest(text), { ok: true, request: { action: 'ack', seq } }, text);
    }
    assert.deepEqual(texts.map(bareAckSeq).filter((seq) => seq !== undefined), [1, 907, 123456789012345]);
  });

  it('embeds the published bytes verbatim, without a byte order mark', () => {
    const body = Buffer.from('{ "data" : {"type":"T","id":"x"}, "extra": [1,2] }');
    assert.equal(ackModeFrame(12, body).toString(), `{"seq":12,"message":${body}}`);
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    assert.equal(ackModeFrame(1, withBom).toString(), `{"seq":1,"message":${body}}`);
  });
});

describe('acknowledged delivery: sessions over the memory broker', () => {
  it('grants ack mode in the join reply, numbers frames from 1 and keeps at most the window unacknowledged', async () => {
    const { socket, publish, ids, gauge } = await setup({ ackWindow: 3 });
    const a = await socket(true);
    assert.deepEqual(a.reply, { correlationId: 'j', status: 200, data: { channelId: 'alice', message: 'Successfully joined profile channel.', ack: true } });
    await publish('m1', 'm2', 'm3', 'm4', 'm5');
    assert.deepEqual(ids(a.connection), ['1:m1', '2:m2', '3:m3']);
    assert.equal(await gauge('switchboard_notify_unacked_frames'), 3);
    a.session.onText('{"action":"ack","seq":2}');
    assert.deepEqual(ids(a.connection), ['1:m1', '2:m2', '3:m3', '4:m4', '5:m5']);
    a.session.onText('{"action":"ack","seq":5}');
    assert.equal(await gauge('switchboard_notify_unacked_frames'), 0);
    assert.equal(a.connection.frames.length, 6, 'acks get no reply');
  });

  it('answers 400 to an ack for a frame not sent, 409 outside ack mode, and nothing to a repeated ack', async () => {
    const { socket, publish } = await setup();
    const a = await socket(true);
    await publish('m1');
    a.session.onText('{"action":"ack","seq":2,"correlationId":"k"}');
    assert.deepEqual(JSON.parse(a.connection.frames.at(-1)!), { correlationId: 'k', status: 400, data: { channelId: 'alice', message: 'Frame 2 was not sent yet.' } });
    a.session.onText('{"action":"ack","seq":1}');
    const count = a.connection.frames.length;
    a.session.onText('{"action":"ack","seq":1}');
    assert.equal(a.connection.frames.length, count, 'a repeated ack is not answered');
    const p = await socket(false);
    assert.equal(p.reply.data.ack, undefined, 'a plain join reply is unchanged');
    p.session.onText('{"action":"ack","seq":1}');
    assert.equal(JSON.parse(p.connection.frames.at(-1)!).status, 409);
  });

  it('settles only what was acknowledged: a socket that closes gives the rest back, from seq 1 on the next join', async () => {
    const { socket, publish, ids, gauge } = await setup({ ackWindow: 10 });
    const a = await socket(true);
    await publish('m1', 'm2', 'm3', 'm4');
    a.session.onText('{"action":"ack","seq":2}');
    a.close();
    assert.equal(await gauge('switchboard_notify_unacked_requeued_total'), 2);
    const again = await socket(true);
    await settle();
    assert.deepEqual(ids(again.connection), ['1:m3', '2:m4'], 'only the unacknowledged ones come again');
  });

  it('closes a socket that acknowledges nothing for ackTimeoutMs with 4008, counting each ack as progress', async () => {
    const { socket, publish, clock, gauge } = await setup({ ackWindow: 10 });
    const a = await socket(true);
    await publish('m1', 'm2');
    clock.advance(1_500);
    a.session.onText('{"action":"ack","seq":1}');
    clock.advance(1_500);
    assert.equal(a.connection.closedWith, undefined, 'the ack 1.5 s in restarted the wait');
    clock.advance(500);
    assert.equal(a.connection.closedWith, 4008);
    assert.equal(await gauge('switchboard_notify_ack_timeouts_total'), 1);
  });

  it('times a frame sent after the window emptied from that frame, not from the first one', async () => {
    const { socket, publish, clock } = await setup({ ackWindow: 10 });
    const a = await socket(true);
    await publish('m1');
    clock.advance(1_000);
    a.session.onText('{"action":"ack","seq":1}');
    clock.advance(900);
    await publish('m2');
    clock.advance(1_900);
    assert.equal(a.connection.closedWith, undefined, 'm2 went out 1.9 s ago');
    clock.advance(100);
    assert.equal(a.connection.closedWith, 4008);
  });

  it('does not time out an idle socket with nothing to acknowledge', async () => {
    const { socket, publish, clock } = await setup();
    const a = await socket(true);
    await publish('m1');
    a.session.onText('{"action":"ack","seq":1}');
    clock.advance(60_000);
    assert.equal(a.connection.closedWith, undefined);
  });

  it('a plain socket beside an ack-mode one gets its bytes unchanged; the profile waits for the ack-mode one', async () => {
    const { socket, publish } = await setup({ ackWindow: 10 });
    const a = await socket(true);
    const p = await socket(false);
    await publish('m1');
    assert.deepEqual(p.connection.frames.slice(1), [message('m1')], 'byte for byte');
    a.close();
    await settle();
    // Without a resume window the message went back and the plain socket sees it again (at least once).
    assert.deepEqual(p.connection.frames.slice(1), [message('m1'), message('m1')]);
  });

  it('with a resume window, an ack-mode client that drops and joins again loses nothing while a plain socket stays', async () => {
    const { socket, publish, ids, clock } = await setup({ ackWindow: 10, ackResumeMs: 5_000 });
    const a = await socket(true);
    const p = await socket(false);
    await publish('m1', 'm2');
    a.session.onText('{"action":"ack","seq":1}');
    a.close();
    await publish('m3');
    await settle();
    clock.advance(4_000);
    const back = await socket(true);
    await settle();
    assert.deepEqual(ids(back.connection).map((f) => f.split(':')[1]), ['m2', 'm3'], 'what the drop held comes to the returning client');
    assert.ok(ids(p.connection).includes('m3'), 'the plain socket kept receiving meanwhile');
  });

  it('when nobody comes back within the resume window, what a plain socket wrote counts as delivered', async () => {
    const { socket, publish, clock } = await setup({ ackWindow: 10, ackResumeMs: 5_000 });
    const a = await socket(true);
    const p = await socket(false);
    await publish('m1');
    a.close();
    await settle();
    clock.advance(5_000);
    await settle();
    const later = await socket(true);
    await publish('m2');
    assert.deepEqual(
      later.connection.frames.slice(1).map((f) => JSON.parse(f).message.data.id),
      ['m2'],
      'm1 was settled by the plain socket once the window passed',
    );
    assert.ok(p.connection.frames.length >= 2);
  });
});
