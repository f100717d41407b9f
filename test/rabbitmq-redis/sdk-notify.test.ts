import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CommandFailedError, NotificationClient, type StatusEvent } from '../../sdk/src/index.js';
import { publishOverHttp, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';

/** The notification SDK against the real gateway over real sockets (Node 20: `ws`, loaded by the SDK). */
describe('SDK NotificationClient against the gateway', () => {
  const run = uniqueId('sdkn');
  const profile = `alice-${run}`;
  const tokens = { [`tok-${run}`]: profile, [`tok-short-${run}`]: profile, [`tok-fresh-${run}`]: profile };
  const overrides = () => ({
    tokens: { kind: 'static', tokens, expiresAt: { [`tok-short-${run}`]: Date.now() + 2_500 } },
  });
  let gw: RunningGateway;
  const clients: NotificationClient[] = [];
  const client = (extra: Partial<ConstructorParameters<typeof NotificationClient>[0]> = {}) => {
    const c = new NotificationClient({ url: `${gw.wsUrl}/`, reconnect: { initialDelayMs: 50, maxDelayMs: 500, drainSpreadMs: 0 }, ...extra });
    clients.push(c);
    return c;
  };
  const publish = (body: unknown) => publishOverHttp(gw, profile, JSON.stringify(body));
  const commandStatus = (id: string, status: number, body: string) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: status, body } });

  before(async () => {
    gw = await startGateway(overrides());
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw.close();
  });

  it('joins, resolves command() on success with pending updates seen, rejects on failure', async () => {
    const c = client();
    assert.deepEqual(await c.join(`tok-${run}`), { channelId: profile });
    const pending: string[] = [];
    const ok = c.command('cmd-ok', { timeoutMs: 10_000, onPending: (e) => pending.push(e.body) });
    const failed = assert.rejects(
      c.command('cmd-bad', { timeoutMs: 10_000 }),
      (err: unknown) => err instanceof CommandFailedError && err.reason === 'storage node unreachable',
    );
    await publish(commandStatus('cmd-ok', 1, 'queued'));
    await publish(commandStatus('cmd-ok', 2, 'Command completed successfully'));
    await publish(commandStatus('cmd-bad', 3, 'storage node unreachable'));
    assert.deepEqual(await ok, { commandId: 'cmd-ok', body: 'Command completed successfully' });
    assert.deepEqual(pending, ['queued']);
    await failed;
    await c.leave();
    assert.equal(c.channelId, undefined);
    assert.equal(c.pendingCount, 0);
  });

  it('resolves download() with the link', async () => {
    const c = client();
    await c.join(`tok-${run}`);
    const link = c.download('req-1', { timeoutMs: 10_000 });
    await publish({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'req-1', data_context: 'ctx', output_type: 1, body: 'https://download.example/p?auth=t' } });
    assert.equal(await link, 'https://download.example/p?auth=t');
    await c.leave();
  });

  it('survives a gateway restart: reconnects, re-joins, reconciles through poll(), and command() still resolves', async () => {
    const polled: string[] = [];
    const c = client({
      poll: (id) => {
        polled.push(id);
        return id === 'cmd-missed' ? { status: 2, body: 'finished while you were away' } : undefined;
      },
    });
    await c.join(`tok-${run}`);
    const statuses: StatusEvent['status'][] = [];
    c.onStatus((e) => statuses.push(e.status));
    const streamed = c.command('cmd-stream', { timeoutMs: 20_000 });
    const missed = c.command('cmd-missed', { timeoutMs: 20_000 });
    await publish(commandStatus('cmd-stream', 1, 'step 1'));
    const port = gw.port;
    const rejoined = new Promise<{ channelId: string }>((resolve) => c.once('joined', resolve));
    await gw.close();
    gw = await startGateway({ ...overrides(), port });
    assert.equal((await rejoined).channelId, profile);
    await publish(commandStatus('cmd-stream', 2, 'done after restart'));
    assert.deepEqual(await streamed, { commandId: 'cmd-stream', body: 'done after restart' });
    assert.deepEqual(await missed, { commandId: 'cmd-missed', body: 'finished while you were away' });
    assert.ok(polled.includes('cmd-missed'));
    assert.equal(statuses[0], 'reconnecting');
    assert.ok(statuses.includes('connected'));
    await c.leave();
  });

  it('joins again with a fresh token when the gateway reports expiry', async () => {
    // Again on a gateway whose clock the test moves past the short token's expiry once it joined.
    const clock = new FakeClock(Date.now());
    const { port } = gw;
    await gw.close();
    gw = await startGateway({ tokens: { kind: 'static', tokens, expiresAt: { [`tok-short-${run}`]: clock.now() + 2_500 } }, port }, { clock });
    const c = client({ refreshToken: () => `tok-fresh-${run}` });
    await c.join(`tok-short-${run}`);
    const expired = new Promise((resolve) => c.once('expired', resolve));
    const rejoined = new Promise<{ channelId: string }>((resolve) => c.once('joined', resolve));
    clock.advance(2_500);
    assert.deepEqual(await expired, { channelId: profile });
    assert.equal((await rejoined).channelId, profile);
    const ok = c.command('cmd-after-refresh', { timeoutMs: 10_000 });
    await publish(commandStatus('cmd-after-refresh', 2, 'ok'));
    assert.equal((await ok).body, 'ok');
    await c.leave();
  });
});

/** With RabbitMQ, what is published while the gateway is down waits in the profile's queue and arrives after the re-join. */
describe('SDK NotificationClient across a gateway restart on RabbitMQ', () => {
  it('resolves command() from a status published while the gateway was down, and drops the redelivered copy', async () => {
    const run = uniqueId('sdkq');
    const profile = `q-${run}`;
    const overrides = { amqpUrl, notify: { retention: testRetention }, tokens: { kind: 'static', tokens: { [`tok-${run}`]: profile } } };
    let gw = await startGateway(overrides);
    const amqp = await plainAmqp();
    const client = new NotificationClient({ url: `${gw.wsUrl}/`, reconnect: { initialDelayMs: 50, maxDelayMs: 500, drainSpreadMs: 0 } });
    try {
      await client.join(`tok-${run}`);
      const seen: string[] = [];
      client.on('message', (m) => seen.push(`${m.data.id}:${String(m.data.command_status)}`));
      const command = client.command(`cmd-${run}`, { timeoutMs: 20_000 });
      const port = gw.port;
      const rejoined = new Promise((resolve) => client.once('joined', resolve));
      await gw.close();

      // A backend publishes (twice: at-least-once) while no gateway is running.
      const body = Buffer.from(JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `cmd-${run}`, command_status: 2, body: 'published while down' } }));
      for (let i = 0; i < 2; i++) amqp.channel.sendToQueue(`message_to_user.${profile}`, body, { persistent: true });
      await amqp.channel.waitForConfirms();

      gw = await startGateway({ ...overrides, port });
      await rejoined;
      assert.deepEqual(await command, { commandId: `cmd-${run}`, body: 'published while down' });
      const marker = new Promise((resolve) => client.on('message', (m) => m.data.id === `marker-${run}` && resolve(m)));
      amqp.channel.sendToQueue(`message_to_user.${profile}`, Buffer.from(JSON.stringify({ data: { type: 'X-MARK', id: `marker-${run}` } })), { persistent: true });
      await marker;
      assert.deepEqual(seen, [`cmd-${run}:2`, `marker-${run}:undefined`], 'the duplicate was dropped');
    } finally {
      await client.close();
      await amqp.close();
      await gw.close();
    }
  });
});
