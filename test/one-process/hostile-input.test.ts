import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { connectControl } from '../helpers/control-gateway.js';

/** Issue 10: what an attacker or a careless client tried, answered in the project's own shapes. */
describe('hostile input over HTTP and the control socket', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({ headersTimeoutMs: 500, control: { maxStatusBytes: 1_024, maxArgsBytes: 100_000 } });
  });
  after(() => gw.close());

  it('closes a connection that drips its headers after headersTimeoutMs with 408, not a minute later', async () => {
    const socket = createConnection({ host: '127.0.0.1', port: gw.port });
    await once(socket, 'connect');
    const started = performance.now();
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    await once(socket, 'close');
    const heldMs = performance.now() - started;
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(heldMs < 2_500, `held ${heldMs.toFixed(0)} ms`);
  });

  it('answers a 300-character profile id with 400 in the project’s error shape, and a large body without a key with 401', async () => {
    const long = await fetch(`${gw.url}/api/notify/v1/profiles/${'p'.repeat(300)}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
      body: '{"data":{"type":"X-DPT-CAB-ID","id":"1"}}',
    });
    assert.equal(long.status, 400);
    assert.match(((await long.json()) as { error: string }).error, /profile id/);
    const big = await fetch(`${gw.url}/api/notify/v1/profiles/alice/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(10 * 1024 * 1024, 'x'),
    });
    assert.equal(big.status, 401);
    assert.ok(typeof ((await big.json()) as { error: string }).error === 'string');
  });

  it('answers exec of a name a plain object inherits (constructor, toString, valueOf) with error 1, not an access denial', async () => {
    const client = await connectControl(gw);
    try {
      for (const [id, name] of [
        [1, 'constructor'],
        [2, 'toString'],
        [3, 'valueOf'],
        [4, 'hasOwnProperty'],
        [5, '__proto__'],
      ] as const) {
        const reply = await client.request<{ type: string; error_code: number; msg: string }>({ id, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 1, name, args: [] });
        assert.equal(reply.type, 'error');
        assert.equal(reply.error_code, 1, `${name}: ${reply.msg}`);
        assert.equal(reply.msg, `could not find function ${name}`);
      }
    } finally {
      await client.close();
    }
  });

  it('refuses cookie or query credentials from a foreign Origin on the control upgrade and REST (403), and answers CORS preflights by allowedOrigins', async () => {
    const evil = 'https://evil.example';
    const upgrade = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${gw.wsUrl}/api/engine/v2/systems/control`, { headers: { origin: evil, cookie: 'api-key=demo-admin-key' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', reject);
    });
    assert.equal(upgrade, 403);
    const sameSite = await connectControl(gw, '', { cookie: 'api-key=demo-admin-key', origin: `http://127.0.0.1:${gw.port}` });
    await sameSite.close();
    const withHeader = await connectControl(gw, '', { 'x-api-key': 'demo-admin-key', origin: evil });
    await withHeader.close();

    const rest = await fetch(`${gw.url}/api/engine/v2/systems/sys-demo/Display_1/reboot`, { method: 'POST', headers: { origin: evil, cookie: 'api-key=demo-admin-key' } });
    assert.equal(rest.status, 403);
    assert.match(((await rest.json()) as { error: string }).error, /cross-site request refused/);

    const preflight = await fetch(`${gw.url}/api/engine/v2/systems`, { method: 'OPTIONS', headers: { origin: evil, 'access-control-request-method': 'GET' } });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });

  it('refuses a status value over control.maxStatusBytes: the exec that tried answers 3, bound clients never get it', async () => {
    const client = await connectControl(gw);
    try {
      const huge = 'x'.repeat(5_000);
      const reply = await client.request<{ type: string; error_code: number; msg: string }>({ id: 1, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input', args: [huge] });
      assert.equal(reply.error_code, 3);
      assert.match(reply.msg, /status input: \d+ bytes is over the 1024-byte cap/);
      const state = await fetch(`${gw.url}/api/engine/v2/systems/sys-demo/Display_2/input`, { headers: { 'X-API-Key': 'demo-admin-key' } });
      assert.equal(await state.text(), '"hdmi1"', 'the stored value is unchanged');
    } finally {
      await client.close();
    }
  });

  it('caps open connections per client address and per credential when configured (off by default)', async () => {
    const capped = await startGateway({ maxConnectionsPerAddress: 3, maxConnectionsPerCredential: 2 });
    const status = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          opened.push(ws);
          resolve(101);
        });
        ws.on('error', reject);
      });
    const opened: WebSocket[] = [];
    try {
      const control = `${capped.wsUrl}/api/engine/v2/systems/control`;
      const key = { 'X-API-Key': 'demo-admin-key' };
      assert.equal(await status(control, key), 101);
      assert.equal(await status(control, key), 101);
      assert.equal(await status(control, key), 429, 'a third socket of the same credential');
      assert.equal(await status(`${capped.wsUrl}/`), 101);
      assert.equal(await status(`${capped.wsUrl}/`), 429, 'a fourth socket from 127.0.0.1');
      const first = opened.shift()!;
      first.close();
      await once(first, 'close');
      // The server counts the close once it sees it; a new upgrade after that is accepted.
      let answer = 0;
      for (let i = 0; i < 50 && answer !== 101; i++) answer = await status(`${capped.wsUrl}/`);
      assert.equal(answer, 101);
    } finally {
      for (const ws of opened) ws.terminate();
      await capped.close();
    }
  });
});
