import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { describe, it } from 'node:test';
import { startGateway, uniqueId } from '../helpers/gateway.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { amqpUrl, testRetention } from '../helpers/rabbitmq.js';
import { captureLogs } from '../helpers/log-capture.js';
import { join, TestClient } from '../helpers/ws-client.js';

describe('gateway lifecycle', () => {
  it('on SIGTERM closes joined sockets with 1001, hands over its consumers, and exits 0 well within 10 s', async () => {
    const run = uniqueId('term');
    const gw = await startGatewayProcess({
      amqpUrl,
      tokens: { kind: 'static', tokens: { [`tok-${run}`]: `p-${run}` } },
      notify: { retention: testRetention },
    });
    try {
      const client = await TestClient.connect(gw.wsUrl);
      assert.equal((await client.request(join(`tok-${run}`))).status, 200);
      const started = Date.now();
      const exit = gw.stop();
      assert.equal(await client.closed, 1001);
      assert.equal(await exit, 0);
      assert.ok(Date.now() - started < 10_000, 'exited within 10 s');
      assert.ok(gw.logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'));
    } finally {
      await gw.stop();
    }
  });

  it('refuses an upgrade on any other path before upgrading, and warns when started with demo credentials', async () => {
    const gw = await startGatewayProcess({ demo: true });
    try {
      const refused = await TestClient.connect(`${gw.wsUrl}/some/other/path`).then(
        () => 'upgraded',
        (err: Error) => err.message,
      );
      assert.equal(refused, 'HTTP 404');
      const log = await gw.waitForLog((l) => l.level === 40 && /DEMO CONFIGURATION/.test(l.msg));
      assert.ok(log);
    } finally {
      await gw.stop();
    }
  });

  it('closes a peer that stops answering pings', async () => {
    const logs = captureLogs();
    const clock = new FakeClock();
    // Ten seconds between heartbeats (under the 30 s join deadline): only the injected clock makes this test see one.
    const gw = await startGateway({ heartbeatIntervalMs: 10_000 }, { logger: logs.logger, clock });
    try {
      const client = await TestClient.connect(gw.wsUrl);
      const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      // A dead peer: its socket stops reading, so it never answers the server's pings.
      socket.pause();
      clock.advance(10_000); // a ping
      clock.advance(10_000); // no pong since: terminated
      await logs.waitFor((l) => l.msg === 'dead peer: terminating');
      await logs.waitFor((l) => l.msg === 'disconnected' && l.channel === 'notify');
      socket.resume();
      assert.equal(await client.closed, 1006, 'the server dropped the connection without a close frame');
    } finally {
      await gw.close();
    }
  });

  it('answers a flood of requests beyond the per-socket rate with 429 and keeps the socket', async () => {
    const clock = new FakeClock();
    const gw = await startGateway({ notify: { requestsPerSecond: 5 } }, { clock });
    try {
      const client = await TestClient.connect(gw.wsUrl);
      for (let i = 0; i < 30; i += 1) client.send({ action: 'leaveChannel', correlationId: `r${i}`, data: { channelId: 'x' } });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i += 1) statuses.push((await client.nextJson()).status);
      assert.ok(statuses.includes(429), `some were rate limited: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 409).length, 10, 'the burst (2x the rate) was served');
      // A ping counts against the rate too: once the limit has room again, it is answered.
      clock.advance(1_000);
      client.send('ping');
      assert.equal(await client.next(), 'pong');
      await client.close();
    } finally {
      await gw.close();
    }
  });

  it('refuses to start on a bad configuration, naming each bad key', async () => {
    const dir = mkdtempSync(joinPath(tmpdir(), 'switchboard-bad-'));
    const file = joinPath(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ notify: { joinDeadlineMs: 'soon' }, apiKeys: [{ id: 'k' }] }));
    const { code, stderr } = await runMain({ SWITCHBOARD_CONFIG: file, PORT: 'eighty', AMQP_URL: 'http://nope' });
    assert.equal(code, 2);
    assert.match(stderr, /port \(from PORT\)/);
    assert.match(stderr, /amqpUrl \(from AMQP_URL\): must start with amqp:\/\/ or amqps:\/\//);
    assert.match(stderr, /notify\.joinDeadlineMs/);
    assert.match(stderr, /apiKeys\.0.*exactly one of key, keySha256/);
    assert.doesNotMatch(stderr, /at .*\.js:\d+/, 'no stack trace');

    writeFileSync(file, '{ not json');
    const broken = await runMain({ SWITCHBOARD_CONFIG: file });
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /bad\.json/);
  });
});

function runMain(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/src/main.js'], { env: { ...process.env, AMQP_URL: '', REDIS_URL: '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}
