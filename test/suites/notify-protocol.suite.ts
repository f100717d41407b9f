import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../helpers/fake-clock.js';
import { deepMerge, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { join, leave, TestClient } from '../helpers/ws-client.js';

/**
 * The notification protocol as a client sees it (spec: notify-protocol.md), run once per broker
 * implementation. `brokerOverrides` selects the broker (e.g. {amqpUrl: ...}).
 */
export function notifyProtocolSuite(brokerName: string, brokerOverrides: () => Record<string, unknown>): void {
  describe(`notification protocol on the ${brokerName} broker`, () => {
    const run = uniqueId('np');
    const alice = `alice-${run}`;
    const bob = `bob-${run}`;
    const carol = `carol-${run}`;
    const tokens = {
      [`tok-alice-${run}`]: alice,
      [`tok-alice2-${run}`]: alice,
      [`tok-bob-${run}`]: bob,
      [`tok-carol-${run}`]: carol,
      [`tok-soon-${run}`]: carol,
      [`tok-expired-${run}`]: carol,
    };
    const logs = captureLogs();
    let gw: RunningGateway;
    const clients: TestClient[] = [];
    const connect = async () => {
      const client = await TestClient.connect(gw.wsUrl);
      clients.push(client);
      return client;
    };
    const publish = (profile: string, body: string) =>
      fetch(`${gw.url}/api/notify/v1/profiles/${profile}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
        body,
      });

    before(async () => {
      gw = await startGateway(
        deepMerge(brokerOverrides(), {
          tokens: {
            kind: 'static',
            tokens,
            expiresAt: { [`tok-soon-${run}`]: Date.now() + 60 * 60_000, [`tok-expired-${run}`]: '2020-01-01T00:00:00Z' },
          },
          notify: { joinDeadlineMs: 30_000 },
        }),
        { logger: logs.logger },
      );
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await gw.close();
    });

    it('answers ping with pong', async () => {
      const client = await connect();
      client.send('ping');
      assert.equal(await client.next(), 'pong');
    });

    it('joins, echoes the correlation id, and forwards messages byte for byte', async () => {
      const client = await connect();
      assert.deepEqual(await client.request(join(`tok-alice-${run}`, 'c-1')), {
        correlationId: 'c-1',
        status: 200,
        data: { channelId: alice, message: 'Successfully joined profile channel.' },
      });
      const status = '{"data":{"type":"X-DPT-CAB-ID","id":"23f7978a","command_status":2,"body":"Command completed successfully"}}';
      const download = '{ "data" : {"type":"X-DPT-CAB-REQUEST-ID","id":"b24b","data_context":"ctx","output_type":1,"body":"https://download.example/p?auth=t"} }';
      assert.equal((await publish(alice, status)).status, 202);
      assert.equal((await publish(alice, download)).status, 202);
      assert.equal(await client.next(), status);
      assert.equal(await client.next(), download);
      await client.request(leave(alice));
    });

    it('accepts the lenient top-level form and a leave by token', async () => {
      const client = await connect();
      const joined = await client.request({ action: 'joinChannel', correlationId: 'top', authorizationToken: `tok-bob-${run}` });
      assert.equal(joined.status, 200);
      assert.equal(joined.correlationId, 'top');
      const left = await client.request({ action: 'leaveChannel', data: { authorizationToken: `tok-bob-${run}` } });
      assert.deepEqual(left, { status: 200, data: { channelId: bob, message: 'Successfully left profile channel.' } });
    });

    it('treats a second join of the same profile as idempotent and refuses another profile with 409', async () => {
      const client = await connect();
      assert.equal((await client.request(join(`tok-alice-${run}`))).status, 200);
      assert.equal((await client.request(join(`tok-alice2-${run}`))).status, 200);
      const other = await client.request(join(`tok-bob-${run}`, 'x'));
      assert.equal(other.status, 409);
      assert.equal(other.correlationId, 'x');
      const body = '{"data":{"type":"X-DPT-CAB-ID","id":"once","command_status":1,"body":"pending"}}';
      await publish(alice, body);
      assert.equal(await client.next(), body);
      // Leaving another profile's channel is forbidden; after a leave, a second leave is 409.
      assert.equal((await client.request(leave(bob))).status, 403);
      assert.equal((await client.request(leave(alice))).status, 200);
      assert.equal((await client.request(leave(alice))).status, 409);
      // Still open: it may join again, now as another profile.
      assert.equal((await client.request(join(`tok-bob-${run}`))).status, 200);
      assert.equal(client.unread().length, 0, 'no duplicate delivery from the idempotent join');
    });

    it('answers bad input with its documented reply and keeps serving everyone', async () => {
      const firstLine = logs.lines.length;
      const watcher = await connect();
      assert.equal((await watcher.request(join(`tok-carol-${run}`))).status, 200);
      const client = await connect();
      const cases: Array<[unknown, number, RegExp]> = [
        ['not json', 400, /Malformed JSON/],
        ['[1,2]', 400, /JSON object/],
        [{ action: 'dance', correlationId: 'd' }, 400, /Unknown action/],
        [{ correlationId: 'n' }, 400, /Missing field "action"/],
        [{ action: 'joinChannel', data: {} }, 400, /authorizationToken/],
        [{ action: 'joinChannel', data: { authorizationToken: 42 } }, 400, /non-empty string/],
        [{ action: 'leaveChannel', data: {} }, 400, /authorizationToken" or "data.channelId/],
        [join('no-such-token'), 401, /Invalid authorization token/],
        [join(`tok-expired-${run}`), 401, /expired/],
        [leave(carol), 409, /Not joined/],
      ];
      for (const [frame, status, message] of cases) {
        const reply = await client.request(frame);
        assert.equal(reply.status, status, JSON.stringify(frame));
        assert.match(reply.data.message, message);
        assert.doesNotMatch(JSON.stringify(reply), /at .*\.js|Error:/, 'no stack trace');
      }
      client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
      const binary = await client.nextJson();
      assert.equal(binary.status, 400);
      assert.match(binary.data.message, /Binary frames/);

      const big = await connect();
      big.send('x'.repeat(1024 * 1024));
      assert.equal(await big.closed, 1009);

      const body = '{"data":{"type":"X-DPT-CAB-ID","id":"still","command_status":2,"body":"ok"}}';
      await publish(carol, body);
      assert.equal(await watcher.next(), body, 'the other client keeps being served');
      client.send('ping');
      assert.equal(await client.next(), 'pong', 'the client that sent bad input is still connected');

      // Each refusal was logged, without the token.
      const refusals = logs.lines.slice(firstLine).filter((l) => ['bad request', 'request refused', 'binary frame refused'].includes(l.msg));
      assert.equal(refusals.length, cases.length + 1);
      assert.ok(refusals.some((l) => l.msg === 'request refused' && l.status === 401));
      assert.ok(!JSON.stringify(logs.lines).includes('no-such-token') && !JSON.stringify(logs.lines).includes(`tok-expired-${run}`));
    });

    it('dead-letters a poison message (bytes that are not UTF-8, or too large) and delivers the next one; the publish endpoint refuses both', async () => {
      const client = await connect();
      assert.equal((await client.request(join(`tok-bob-${run}`))).status, 200);
      const prefix = Buffer.from('{"data":{"type":"X-DPT-CAB-ID","id":"poison","body":"');
      const notUtf8 = Buffer.concat([prefix, Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from('"}}')]);
      const tooLarge = Buffer.concat([prefix, Buffer.alloc(70 * 1024, 'x'), Buffer.from('"}}')]);
      const valid = '{"data":{"type":"X-DPT-CAB-ID","id":"after-poison","command_status":2}}';
      // As a careless backend would: straight onto the profile's queue, around the publish endpoint's checks.
      await gw.gateway.broker.publish(bob as never, notUtf8);
      await gw.gateway.broker.publish(bob as never, tooLarge);
      await gw.gateway.broker.publish(bob as never, Buffer.from(valid));
      assert.equal(await client.next(), valid, 'the message after the poison arrives, and nothing before it');
      assert.deepEqual(client.unread(), []);
      assert.equal(client.closeCode, undefined, 'the socket stays open');

      for (const [body, reason] of [
        [notUtf8, 'not valid UTF-8'],
        [tooLarge, 'larger than 65536 bytes'],
      ] as const) {
        const res = await fetch(`${gw.url}/api/notify/v1/profiles/${bob}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
          body,
        });
        assert.equal(res.status, 400);
        assert.match(((await res.json()) as { error: string }).error, new RegExp(reason));
      }
    });

    it('delivers, in order, the messages published while nobody was joined', async () => {
      const profile = `late-${run}`;
      const late = await startGateway(deepMerge(brokerOverrides(), { tokens: { kind: 'static', tokens: { [`tok-late-${run}`]: profile } } }));
      try {
        for (let i = 0; i < 100; i += 1) {
          const res = await fetch(`${late.url}/api/notify/v1/profiles/${profile}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: 'Bearer demo-admin-key' },
            body: JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `m${i}`, command_status: 2, body: `n${i}` } }),
          });
          assert.equal(res.status, 202);
        }
        const client = await TestClient.connect(late.wsUrl);
        assert.equal((await client.request(join(`tok-late-${run}`))).status, 200);
        for (let i = 0; i < 100; i += 1) assert.equal(JSON.parse(await client.next()).data.id, `m${i}`);
        await client.close();
      } finally {
        await late.close();
      }
    });

    it('closes a socket that never joins with 1008 at the join deadline', async () => {
      // The deadline runs on the gateway's clock: it passes when the test moves it, not after a wait.
      const clock = new FakeClock(Date.now());
      const quick = await startGateway(deepMerge(brokerOverrides(), { notify: { joinDeadlineMs: 200 } }), { clock });
      try {
        const idle = await TestClient.connect(quick.wsUrl);
        // The pong proves the session (and its deadline) exists before the clock moves.
        idle.send('ping');
        assert.equal(await idle.next(), 'pong');
        clock.advance(199);
        idle.send('ping');
        assert.equal(await idle.next(), 'pong', 'still open just before the deadline');
        clock.advance(1);
        assert.equal(await idle.closed, 1008);
      } finally {
        await quick.close();
      }
    });
  });
}
