import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { backoffDelayMs } from '../../sdk/src/backoff.js';
import {
  AbortError,
  AuthenticationError,
  ConnectionLostError,
  ControlClient,
  NotConnectedError,
  NotificationClient,
  type StatusEvent,
  TimeoutError,
} from '../../sdk/src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeWebSocket, connectedControl, joinedNotify, joinedReply, state } from '../helpers/sdk-fakes.js';

/**
 * Issue 17, first half: every awaited call of the SDK settles, and reconnection follows the gateway's close
 * codes. Time is a FakeClock, the gateway a FakeWebSocket.
 */

const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const display = { sys: 'sys-demo', mod: 'Display', index: 1 };
const meta = { ...display, name: 'power' };

describe('SDK: every awaited call settles', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('rejects awaited commands and downloads with the reason once the client gives up (reconnect: false)', async () => {
    const { client, ws } = await joinedNotify({ reconnect: false });
    const command = client.command('cmd-1');
    const download = client.download('req-1');
    assert.equal(client.pendingCount, 2);
    ws.drop(1006);
    await assert.rejects(command, ConnectionLostError);
    await assert.rejects(download, ConnectionLostError);
    assert.equal(client.pendingCount, 0);
    assert.equal((await client.closed()).byClient, false);
  });

  it('rejects awaited commands once maxAttempts is used up', async () => {
    const clock = new FakeClock();
    const { client, ws } = await joinedNotify({ clock, reconnect: { initialDelayMs: 100, jitter: 0, maxAttempts: 1 } });
    const command = client.command('cmd-1', { timeoutMs: Infinity });
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    clock.advance(100);
    (await next).drop();
    await assert.rejects(command, (err: unknown) => err instanceof ConnectionLostError && /gave up after 1/.test(err.message));
    assert.equal(client.pendingCount, 0);
  });

  it('times a command out by default (commandTimeoutMs), counted from the call', async () => {
    const clock = new FakeClock();
    const { client } = await joinedNotify({ clock, commandTimeoutMs: 60_000 });
    const command = client.command('never');
    clock.advance(59_999);
    assert.equal(await state(command), 'pending');
    clock.advance(1);
    await assert.rejects(command, (err: unknown) => err instanceof TimeoutError && err.timeoutMs === 60_000);
    assert.equal(client.pendingCount, 0);
    await client.close();
  });

  it('fails an exec made while reconnecting at once (default), and never sends it after the outage', async () => {
    const clock = new FakeClock();
    const { client, ws } = await connectedControl({ clock });
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    await assert.rejects(client.exec(display, 'power', [false]), NotConnectedError);
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    const sent = client.exec(display, 'power', [true]);
    const frame = await ws2.nextSent();
    assert.deepEqual(frame.args, [true], 'the exec made during the outage was never sent');
    ws2.deliver({ id: frame.id, type: 'success', value: true });
    assert.equal((await sent).value, true);
    await client.close();
  });

  it("times a queued exec (whenOffline: 'queue') out from the call, not from the send, and then never sends it", async () => {
    const clock = new FakeClock();
    const { client, ws } = await connectedControl({ clock, requestTimeoutMs: 50, reconnect: { initialDelayMs: 1_000, jitter: 0 } });
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    const queued = client.exec(display, 'power', [false], { whenOffline: 'queue' });
    clock.advance(50);
    await assert.rejects(queued, (err: unknown) => err instanceof TimeoutError && err.timeoutMs === 50);
    clock.advance(950);
    const ws2 = await next;
    ws2.accept();
    await state(queued);
    assert.deepEqual(ws2.sent, [], 'nothing sent after the outage');
    assert.equal(client.counts.pending, 0);
    await client.close();
  });

  it('takes an AbortSignal on every awaited call; an aborted request is never sent', async () => {
    const clock = new FakeClock();
    const notify = await joinedNotify({ clock });
    const control = await connectedControl({ clock });
    const controller = new AbortController();
    const { signal } = controller;
    const calls = [
      notify.client.command('c', { signal }),
      notify.client.download('d', { signal }),
      notify.client.join('tok-bob', { signal }),
      control.client.exec(display, 'power', [true], { signal }),
      control.client.bind(power, { signal }),
      control.client.watch({ ...power, name: 'volume' }, () => {}, { signal }),
      control.client.debug(display, () => {}, { signal }),
    ];
    controller.abort(new Error('user went away'));
    await Promise.all(calls.map((call) => assert.rejects(call, (err: unknown) => err instanceof AbortError && (err.cause as Error).message === 'user went away')));
    // Aborted before it was sent: an exec queued for the next socket stays unsent.
    const next = FakeWebSocket.nextInstance();
    control.ws.drop();
    const late = new AbortController();
    const queued = control.client.exec(display, 'reboot', [], { signal: late.signal, whenOffline: 'queue' });
    late.abort();
    await assert.rejects(queued, AbortError);
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    const exec = control.client.exec(display, 'power', [true]);
    const first = await ws2.nextSent();
    assert.deepEqual([first.cmd, first.name], ['exec', 'power'], 'no reboot, and nothing the aborted bind, watch or debug left to re-send');
    ws2.deliver({ id: first.id, type: 'success', value: true });
    await exec;
    await notify.client.close();
    await control.client.close();
  });

  it("lets bind, watch, debug and join fail fast while reconnecting (whenOffline: 'fail'); by default they wait", async () => {
    const clock = new FakeClock();
    const control = await connectedControl({ clock });
    const notify = await joinedNotify({ clock });
    control.ws.drop();
    notify.ws.drop();
    const fail = { whenOffline: 'fail' } as const;
    await Promise.all([
      assert.rejects(control.client.bind(power, fail), NotConnectedError),
      assert.rejects(control.client.watch(power, () => {}, fail), NotConnectedError),
      assert.rejects(control.client.debug(display, () => {}, fail), NotConnectedError),
      assert.rejects(notify.client.join('tok-bob', fail), NotConnectedError),
    ]);
    assert.deepEqual(control.client.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
    await notify.client.close();
    const queued = control.client.bind(power);
    assert.equal(await state(queued), 'pending');
    const next = FakeWebSocket.nextInstance();
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    const bind = await ws2.nextSent();
    ws2.deliver({ id: bind.id, type: 'success', meta });
    await queued;
    await control.client.close();
  });

  it('bounds connect() by its timeout while the gateway does not answer', async () => {
    const clock = new FakeClock();
    const client = new ControlClient({ url: 'ws://gateway.test', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, clock });
    const connecting = client.connect({ timeoutMs: 1_000 });
    clock.advance(1_000);
    await assert.rejects(connecting, TimeoutError);
    await client.close();
  });
});

describe('SDK: a reconnect policy that reads close codes', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('grows the delay when the gateway accepts and drops at once, and reaches maxAttempts', async () => {
    const clock = new FakeClock();
    const client = new ControlClient({ url: 'ws://gateway.test', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, clock, reconnect: { initialDelayMs: 5, jitter: 0, maxAttempts: 4 } });
    const delays: number[] = [];
    client.onStatus((e) => e.status === 'reconnecting' && delays.push(e.delayMs!));
    let next = FakeWebSocket.nextInstance();
    void client.connect().catch(() => {});
    for (let i = 0; i < 5; i++) {
      const ws = await next;
      next = FakeWebSocket.nextInstance();
      ws.accept();
      ws.drop(1006);
      clock.advance(delays.at(-1) ?? 0);
    }
    assert.deepEqual(delays, [5, 10, 20, 40]);
    const info = await client.closed();
    assert.match(info.error!.message, /gave up after 4/);
  });

  it('starts the backoff over after a join, or after the connection stayed up stableAfterMs', async () => {
    const clock = new FakeClock();
    const delays: number[] = [];
    const { client, ws } = await joinedNotify({ clock, reconnect: { initialDelayMs: 5, jitter: 0, stableAfterMs: 1_000 } });
    client.onStatus((e) => e.status === 'reconnecting' && delays.push(e.delayMs!));
    let next = FakeWebSocket.nextInstance();
    ws.drop();
    clock.advance(5);
    const ws2 = await next;
    next = FakeWebSocket.nextInstance();
    ws2.accept(); // opened, never joined, dropped: a failed attempt
    ws2.drop();
    clock.advance(10);
    const ws3 = await next;
    next = FakeWebSocket.nextInstance();
    ws3.accept();
    ws3.deliver(joinedReply((await ws3.nextSent()).correlationId));
    await new Promise((resolve) => client.once('joined', resolve));
    ws3.drop(); // after a join: the first step again
    clock.advance(5);
    const ws4 = await next;
    ws4.accept();
    clock.advance(1_000); // stable without a reply
    ws4.drop();
    assert.deepEqual(delays, [5, 10, 5, 5]);
    await client.close();
  });

  it('uses full jitter by default', () => {
    assert.equal(backoffDelayMs(3, {}, () => 0), 0);
    assert.equal(backoffDelayMs(3, {}, () => 1), 1_000);
  });

  it('spreads the return after 1001 (a draining node) over drainSpreadMs instead of the first backoff step', async () => {
    const clock = new FakeClock();
    const { client, ws } = await connectedControl({ clock, random: () => 0.5, reconnect: { initialDelayMs: 250 } });
    const reconnecting = new Promise<StatusEvent>((resolve) => client.onStatus((e) => e.status === 'reconnecting' && resolve(e)));
    ws.drop(1001, 'node draining');
    const event = await reconnecting;
    assert.equal(event.delayMs, 2_500, 'half of the default 5 s window');
    assert.equal(event.code, 1001);
    assert.equal(event.reason, 'node draining');
    await client.close();
  });

  it('reports 4008 as a slow-consumer event, then reconnects and re-joins', async () => {
    const clock = new FakeClock();
    const { client, ws } = await joinedNotify({ clock });
    const slow = new Promise((resolve) => client.once('slowConsumer', resolve));
    const next = FakeWebSocket.nextInstance();
    ws.drop(4008, 'slow consumer');
    assert.deepEqual(await slow, { code: 4008, reason: 'slow consumer' });
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    assert.equal((await ws2.nextSent()).data.authorizationToken, 'tok-alice');
    await client.close();
  });

  it('asks shouldReconnect(code, reason) and closes for good when it says no', async () => {
    const asked: Array<[number, string]> = [];
    const { client, ws } = await connectedControl({ shouldReconnect: (code, reason) => (asked.push([code, reason]), code !== 4403) });
    ws.drop(4403, 'banned');
    const info = await client.closed();
    assert.deepEqual(asked, [[4403, 'banned']]);
    assert.ok(info.error instanceof ConnectionLostError && info.error.code === 4403 && info.error.reason === 'banned');
    assert.equal(FakeWebSocket.instances.length, 1);
  });

  it('holds no unjoined socket: leave() closes it, and nothing reconnects after the gateway closes an unjoined one with 1008', async () => {
    const { client, ws } = await joinedNotify();
    const statuses: string[] = [];
    client.onStatus((e) => statuses.push(e.status));
    const leaving = client.leave();
    const request = await ws.nextSent();
    assert.equal(request.action, 'leaveChannel');
    ws.deliver({ correlationId: request.correlationId, status: 200, data: { channelId: 'alice', message: 'Successfully left profile channel.' } });
    await leaving;
    assert.ok(ws.closedByClient, 'the socket was closed');
    assert.deepEqual(statuses, ['disconnected']);

    // connect() without a join: the gateway's 1008 after the join deadline does not start a reconnect loop.
    const created = FakeWebSocket.nextInstance();
    const connecting = client.connect();
    const ws2 = await created;
    ws2.accept();
    await connecting;
    ws2.drop(1008, 'join deadline');
    assert.equal(client.status.value.status, 'disconnected');
    assert.equal(FakeWebSocket.instances.length, 2);
    await client.close();
  });

  it('closes the socket after a refused join and after an expiry with no refreshToken', async () => {
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0 });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('bad');
    const ws = await created;
    ws.accept();
    ws.deliver({ correlationId: (await ws.nextSent()).correlationId, status: 401, data: { message: 'Invalid authorization token.' } });
    await assert.rejects(joining);
    assert.ok(ws.closedByClient);
    assert.equal(client.status.value.status, 'disconnected');

    const { client: other, ws: joinedWs } = await joinedNotify();
    joinedWs.deliver({ status: 401, data: { channelId: 'alice', message: 'Authorization token expired; channel left.' } });
    assert.equal(other.status.value.status, 'disconnected');
    assert.ok(joinedWs.closedByClient);
    await client.close();
    await other.close();
  });

  it('detects refused credentials where the WebSocket hides the status (browsers) with an HTTP probe', async () => {
    const probes: string[] = [];
    const client = new ControlClient({
      url: 'ws://gateway.test:8080',
      apiKey: 'wrong key',
      WebSocket: FakeWebSocket,
      heartbeatIntervalMs: 0,
      fetch: async (url) => (probes.push(url), { status: 401 }),
    });
    const created = FakeWebSocket.nextInstance();
    const connecting = client.connect();
    (await created).refuseSilently();
    await assert.rejects(connecting, (err: unknown) => err instanceof AuthenticationError && err.status === 401);
    assert.deepEqual(probes, ['http://gateway.test:8080/api/engine/v2/systems?api-key=wrong+key&limit=1']);
    assert.equal(FakeWebSocket.instances.length, 1, 'no retry');
    assert.equal((await client.closed()).byClient, false);
  });

  it('reconnects as usual when the probe learns nothing (gateway down, CORS)', async () => {
    const clock = new FakeClock();
    const client = new ControlClient({
      url: 'wss://gateway.test',
      apiKey: 'k',
      WebSocket: FakeWebSocket,
      heartbeatIntervalMs: 0,
      clock,
      reconnect: { initialDelayMs: 100, jitter: 0 },
      fetch: async () => {
        throw new TypeError('Failed to fetch');
      },
    });
    const created = FakeWebSocket.nextInstance();
    const connecting = client.connect({ timeoutMs: Infinity });
    const ws1 = await created;
    const next = FakeWebSocket.nextInstance();
    ws1.refuseSilently();
    await new Promise<void>((resolve) => client.onStatus((e) => e.status === 'reconnecting' && resolve()));
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    await connecting;
    await client.close();
  });

  it('can disconnect() and connect() again: the channel is re-joined, bindings re-bound', async () => {
    const { client, ws } = await joinedNotify();
    client.disconnect();
    assert.ok(ws.closedByClient);
    assert.equal(client.status.value.status, 'disconnected');
    const created = FakeWebSocket.nextInstance();
    const connecting = client.connect();
    const ws2 = await created;
    ws2.accept();
    await connecting;
    const rejoin = await ws2.nextSent();
    assert.equal(rejoin.data.authorizationToken, 'tok-alice');
    await client.close();

    const control = await connectedControl();
    const binding = control.client.bind(power);
    const bind = await control.ws.nextSent();
    control.ws.deliver({ id: bind.id, type: 'success', meta });
    await binding;
    control.client.disconnect();
    const created2 = FakeWebSocket.nextInstance();
    void control.client.connect();
    const cws = await created2;
    cws.accept();
    assert.equal((await cws.nextSent()).cmd, 'bind');
    await control.client.close();
  });
});
