import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { backoffDelayMs } from '../../sdk/src/backoff.js';
import { RecentKeys } from '../../sdk/src/dedupe.js';
import {
  ClientClosedError,
  CommandFailedError,
  NotificationClient,
  type NotificationClientOptions,
  NotifyRequestError,
  type StatusEvent,
  TimeoutError,
} from '../../sdk/src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeWebSocket } from '../helpers/sdk-fakes.js';

const status = (id: string, commandStatus: 1 | 2 | 3, body: string) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: commandStatus, body } });
const joined = (correlationId: string, channelId = 'alice') => ({
  correlationId,
  status: 200,
  data: { channelId, message: 'Successfully joined profile channel.' },
});

/** A client on a fake socket, joined as alice. */
async function joinedClient(options: Partial<NotificationClientOptions> = {}) {
  const client = new NotificationClient({
    url: 'ws://gateway.test/',
    WebSocket: FakeWebSocket,
    heartbeatIntervalMs: 0,
    reconnect: { initialDelayMs: 1, jitter: 0 },
    ...options,
  });
  const socketCreated = FakeWebSocket.nextInstance();
  const joining = client.join('tok-alice');
  const ws = await socketCreated;
  ws.accept();
  const request = await ws.nextSent();
  assert.deepEqual(request, { action: 'joinChannel', correlationId: request.correlationId, data: { authorizationToken: 'tok-alice', ack: true } });
  ws.deliver(joined(request.correlationId));
  assert.deepEqual(await joining, { channelId: 'alice' });
  return { client, ws };
}

describe('SDK backoff and de-duplication', () => {
  it('grows exponentially, caps, and spreads by the jitter fraction', () => {
    const opts = { initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0.5 };
    assert.deepEqual([1, 2, 3, 4, 5, 10].map((n) => backoffDelayMs(n, opts, () => 1)), [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelayMs(n, opts, () => 0)), [50, 100, 200]);
    assert.equal(backoffDelayMs(3, { ...opts, jitter: 0 }, () => 0), 400);
  });

  it('remembers a bounded window of keys', () => {
    const keys = new RecentKeys(3);
    assert.equal(keys.seen('a'), false);
    assert.equal(keys.seen('a'), true);
    for (const k of ['b', 'c', 'd']) keys.seen(k);
    assert.equal(keys.size, 3);
    assert.equal(keys.seen('a'), false, 'the oldest key was forgotten');
  });
});

describe('SDK NotificationClient (fake socket)', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('joins and reports 4xx replies as NotifyRequestError with the status', async () => {
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0 });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('bad');
    const ws = await created;
    ws.accept();
    const request = await ws.nextSent();
    ws.deliver({ correlationId: request.correlationId, status: 401, data: { message: 'Invalid authorization token.' } });
    await assert.rejects(joining, (err: unknown) => err instanceof NotifyRequestError && err.status === 401 && /Invalid/.test(err.message));
    await client.close();
  });

  it('keeps the joined channel when joining another profile is refused (409), and re-joins it after a reconnect', async () => {
    const { client, ws } = await joinedClient();
    const joining = client.join('tok-bob');
    const request = await ws.nextSent();
    ws.deliver({ correlationId: request.correlationId, status: 409, data: { channelId: 'alice', message: 'Already joined to another profile channel; leave it first.' } });
    await assert.rejects(joining, (err: unknown) => err instanceof NotifyRequestError && err.status === 409);
    assert.equal(client.channelId, 'alice');
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    const ws2 = await next;
    ws2.accept();
    assert.equal((await ws2.nextSent()).data.authorizationToken, 'tok-alice');
    await client.close();
  });

  it('retries a join answered 503 (broker unavailable) before giving up', async () => {
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 1, jitter: 0 }, joinRetries: 2 });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('tok-alice');
    const ws = await created;
    ws.accept();
    const unavailable = (id: string) => ({ correlationId: id, status: 503, data: { message: 'The message broker is unavailable; try again.' } });
    ws.deliver(unavailable((await ws.nextSent()).correlationId));
    ws.deliver(joined((await ws.nextSent()).correlationId));
    assert.deepEqual(await joining, { channelId: 'alice' });
    const again = client.join('tok-bob');
    for (let i = 0; i < 3; i++) ws.deliver(unavailable((await ws.nextSent()).correlationId));
    await assert.rejects(again, (err: unknown) => err instanceof NotifyRequestError && err.status === 503);
    await client.close();
  });

  it('resolves command() on status 2, reports pending updates, rejects on 3 with the reason', async () => {
    const { client, ws } = await joinedClient();
    const pending: string[] = [];
    const ok = client.command('cmd-1', { onPending: (e) => pending.push(e.body) });
    const failed = assert.rejects(
      client.command('cmd-2'),
      (err: unknown) => err instanceof CommandFailedError && err.reason === 'disk full' && err.commandId === 'cmd-2',
    );
    ws.deliver(status('cmd-1', 1, 'queued'));
    ws.deliver(status('cmd-1', 1, 'running'));
    ws.deliver(status('cmd-1', 2, 'Command completed successfully'));
    ws.deliver(status('cmd-2', 3, 'disk full'));
    assert.deepEqual(await ok, { commandId: 'cmd-1', body: 'Command completed successfully' });
    assert.deepEqual(pending, ['queued', 'running']);
    await failed;
    // A result that arrived before anyone asked is still found.
    ws.deliver(status('cmd-3', 2, 'early'));
    assert.deepEqual(await client.command('cmd-3'), { commandId: 'cmd-3', body: 'early' });
    await client.close();
  });

  it('times out a command with TimeoutError and forgets it', async () => {
    const { client } = await joinedClient();
    await assert.rejects(client.command('never', { timeoutMs: 20 }), (err: unknown) => err instanceof TimeoutError && err.timeoutMs === 20);
    assert.equal(client.pendingCount, 0);
    await client.close();
  });

  it('leaks nothing over thousands of commands (resolved, failed, timed out)', async () => {
    const { client, ws } = await joinedClient();
    const listenersBefore = client.listenerCount();
    const n = 3_000;
    const outcomes = Array.from({ length: n }, (_, i) => {
      const p = client.command(`c-${i}`, { timeoutMs: i % 3 === 2 ? 1 : 60_000, onPending: () => {} });
      return p.then(
        () => 'ok',
        (err: Error) => err.name,
      );
    });
    for (let i = 0; i < n; i++) {
      if (i % 3 === 2) continue;
      ws.deliver(status(`c-${i}`, 1, 'pending'));
      ws.deliver(status(`c-${i}`, i % 3 === 0 ? 2 : 3, `done ${i}`));
    }
    const results = await Promise.all(outcomes);
    assert.equal(results.filter((r) => r === 'ok').length, n / 3);
    assert.equal(results.filter((r) => r === 'CommandFailedError').length, n / 3);
    assert.equal(results.filter((r) => r === 'TimeoutError').length, n / 3);
    assert.equal(client.pendingCount, 0, 'no command waiter left behind');
    assert.equal(client.listenerCount(), listenersBefore, 'no listener left behind');
    await client.close();
  });

  it('drops a redelivered final status but passes on repeated pending updates (the spec lets them repeat)', async () => {
    const { client, ws } = await joinedClient();
    const seen: string[] = [];
    client.on('message', (m) => seen.push(`${m.data.id}:${String(m.data.command_status)}`));
    const pending = status('dup', 1, 'x');
    ws.deliver(pending);
    ws.deliver(pending);
    ws.deliver(status('dup', 2, 'y'));
    ws.deliver(status('dup', 2, 'y'));
    assert.deepEqual(seen, ['dup:1', 'dup:1', 'dup:2']);
    assert.equal(client.listenerCount('message'), 1);
    await client.close();
  });

  it('resolves download() with the link and reports textual status messages', async () => {
    const { client, ws } = await joinedClient();
    const texts: string[] = [];
    const link = client.download('req-1', { onStatus: (t) => texts.push(t) });
    ws.deliver({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'req-1', data_context: 'ctx', output_type: 0, body: 'preparing' } });
    ws.deliver({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'req-1', data_context: 'ctx', output_type: 1, body: 'https://dl.test/x?auth=1' } });
    assert.equal(await link, 'https://dl.test/x?auth=1');
    assert.deepEqual(texts, ['preparing']);
    assert.equal(client.pendingCount, 0);
    await client.close();
  });

  it('reconnects with backoff, re-joins, and reconciles pending commands through poll()', async () => {
    const polled: string[] = [];
    const { client, ws } = await joinedClient({
      poll: (id) => {
        polled.push(id);
        return id === 'missed' ? { status: 2, body: 'done while away' } : undefined;
      },
    });
    const statuses: StatusEvent['status'][] = [];
    client.onStatus((e) => statuses.push(e.status));
    const missed = client.command('missed');
    const later = client.command('later');
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    const ws2 = await next;
    ws2.accept();
    const rejoin = await ws2.nextSent();
    assert.equal(rejoin.action, 'joinChannel');
    assert.equal(rejoin.data.authorizationToken, 'tok-alice');
    const rejoined = new Promise((resolve) => client.once('joined', resolve));
    ws2.deliver(joined(rejoin.correlationId));
    assert.deepEqual(await rejoined, { channelId: 'alice', deliveryMode: 'plain' });
    assert.deepEqual(await missed, { commandId: 'missed', body: 'done while away' });
    ws2.deliver(status('later', 2, 'after reconnect'));
    assert.deepEqual(await later, { commandId: 'later', body: 'after reconnect' });
    assert.deepEqual(polled.sort(), ['later', 'missed']);
    assert.deepEqual(statuses, ['reconnecting', 'connected']);
    await client.close();
  });

  it('asks for a fresh token when the gateway reports expiry, and joins with it', async () => {
    let refreshed = 0;
    const { client, ws } = await joinedClient({ refreshToken: () => `tok-fresh-${++refreshed}` });
    const expired = new Promise((resolve) => client.once('expired', resolve));
    ws.deliver({ status: 401, data: { channelId: 'alice', message: 'Authorization token expired; channel left.' } });
    assert.deepEqual(await expired, { channelId: 'alice' });
    const request = await ws.nextSent();
    assert.deepEqual(request.data, { authorizationToken: 'tok-fresh-1', ack: true });
    const rejoined = new Promise((resolve) => client.once('joined', resolve));
    ws.deliver(joined(request.correlationId));
    await rejoined;
    assert.equal(client.channelId, 'alice');
    await client.close();
  });

  it('stops for good on close(): pending work rejects, closed() resolves, status ends with closed', async () => {
    const { client } = await joinedClient();
    const pending = assert.rejects(client.command('x'), ClientClosedError);
    const statuses: string[] = [];
    const iterating = (async () => {
      for await (const event of client.status) statuses.push(event.status);
    })();
    const info = await client.close();
    assert.equal(info.byClient, true);
    await pending;
    await assert.rejects(client.command('y'), ClientClosedError);
    assert.deepEqual(await client.closed(), info);
    await iterating;
    assert.deepEqual(statuses, ['closed']);
  });

  it('sends ping as heartbeat and replaces a socket that stays silent', async () => {
    const clock = new FakeClock();
    const { client, ws } = await joinedClient({ heartbeatIntervalMs: 10, clock });
    clock.advance(10);
    assert.equal(await ws.nextSent((f) => f === 'ping'), 'ping');
    // The fake answers nothing: the next tick finds the socket silent and reconnects.
    const next = FakeWebSocket.nextInstance();
    clock.advance(10);
    clock.advance(1);
    assert.notEqual(await next, ws);
    await client.close();
  });

  it('gives up after maxAttempts and resolves closed() with the error', async () => {
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 1, maxAttempts: 2 } });
    let next = FakeWebSocket.nextInstance();
    const joining = client.join('tok-alice');
    for (let i = 0; i < 3; i++) {
      const ws = await next;
      next = FakeWebSocket.nextInstance();
      ws.drop();
    }
    const info = await client.closed();
    assert.equal(info.byClient, false);
    assert.match(info.error!.message, /gave up after 2/);
    await assert.rejects(joining, /gave up/);
  });
});
