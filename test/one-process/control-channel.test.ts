import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import type { RunningGateway } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { adminCaller, connectControl, controlPath, startControlGateway } from '../helpers/control-gateway.js';
import type { TestClient } from '../helpers/ws-client.js';

const jwtSecret = 'control-channel-secret-0123456789';
const meta = (name: string, mod = 'Display', index = 1, sys = 'sys-demo') => `"meta":{"sys":"${sys}","mod":"${mod}","index":${index},"name":"${name}"}`;
const error = (id: number, code: number, msg: string) => `{"id":${id},"type":"error","msg":${JSON.stringify(msg)},"error_code":${code},"code":500}`;

/** Answers an upgrade refusal with its HTTP status and body, as a client sees it. */
function refusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      reject(new Error('upgrade was accepted'));
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    ws.on('error', () => {});
  });
}

const sign = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(jwtSecret));

describe('control channel over real sockets', () => {
  let gw: RunningGateway;
  const logs = captureLogs('debug');
  let admin: TestClient;
  let user: TestClient;

  before(async () => {
    gw = await startControlGateway({ jwt: { secret: jwtSecret } }, { logger: logs.logger });
    admin = await connectControl(gw);
    user = await connectControl(gw, '', { 'X-API-Key': 'demo-user-key' });
  });
  after(async () => {
    await admin.close();
    await user.close();
    await gw.close();
  });

  describe('authentication before the upgrade', () => {
    it('accepts the API key from the header, the query and the cookie, and fixed_device=true', async () => {
      for (const [query, headers] of [
        ['', { 'X-API-Key': 'demo-admin-key' }],
        ['api-key=demo-admin-key&fixed_device=true', {}],
        ['', { Cookie: 'api-key=demo-admin-key' }],
      ] as const) {
        const c = await connectControl(gw, query, headers);
        c.send('ping');
        assert.equal(await c.next(), 'pong');
        await c.close();
      }
    });

    it('accepts a JWT from the Authorization header, the bearer_token query and cookie', async () => {
      const jwt = await sign({ sub: 'jwt-user', scope: 'public', u: { p: 0 } });
      for (const [query, headers] of [
        ['', { Authorization: `Bearer ${jwt}` }],
        [`bearer_token=${jwt}`, {}],
        ['', { Cookie: `bearer_token=${jwt}` }],
      ] as const) {
        const c = await connectControl(gw, query, headers);
        const reply = await c.request({ id: 1, cmd: 'bind', sys: 'sys-demo', mod: 'Lights', name: 'level' });
        assert.equal(reply.type, 'success');
        await c.close();
      }
    });

    it('refuses with 401 and {"error"} for no, unknown or invalid credentials, 403 without the scope', async () => {
      const url = `${gw.wsUrl}${controlPath}`;
      assert.deepEqual(await refusal(url), {
        status: 401,
        body: { error: 'missing credential: X-API-Key header, api-key query or cookie, or a bearer token' },
      });
      assert.deepEqual(await refusal(`${url}?api-key=wrong`), { status: 401, body: { error: 'unknown API key' } });
      assert.deepEqual(await refusal(url, { Authorization: 'Bearer abc.def.ghi' }), { status: 401, body: { error: 'invalid token' } });
      const noScope = await sign({ sub: 'guest', scope: ['guest'], u: { p: 0 } });
      assert.equal((await refusal(`${url}?bearer_token=${noScope}`)).status, 403);
      const logged = logs.lines.find((l) => l.msg === 'control connection refused' && l.status === 403);
      assert.equal(logged?.credential, 'guest');
      assert.equal(logged?.remote, '127.0.0.1');
      assert.doesNotMatch(JSON.stringify(logs.lines), new RegExp(noScope.split('.')[2]!));
    });

    it('answers a plain GET with 426', async () => {
      const res = await fetch(`${gw.url}${controlPath}`);
      assert.equal(res.status, 426);
      assert.deepEqual(await res.json(), { error: 'this endpoint needs a WebSocket upgrade' });
    });

    it('serves /auth/authority without credentials', async () => {
      const res = await fetch(`${gw.url}/auth/authority`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ['id', 'name', 'domain', 'login_url', 'logout_url', 'config', 'version', 'session', 'production']);
      assert.equal(body.version, 'v2.0.0');
      assert.equal(body.session, false);
      assert.deepEqual(body.config, {});
    });
  });

  describe('error table, exact frames', () => {
    const rows: Array<[string, () => TestClient, unknown, string]> = [
      ['0 parse error', () => admin, '{"id":1,"cmd":', error(0, 0, 'invalid JSON')],
      ['1 missing field', () => admin, { id: 11, cmd: 'bind', sys: 'sys-demo', mod: 'Display' }, error(11, 1, 'field "name" must be a non-empty string')],
      ['1 unknown method', () => admin, { id: 12, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'powr', args: [] }, error(12, 1, 'could not find function powr')],
      [
        '1 bad arguments',
        () => admin,
        { id: 13, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'power', args: ['yes'] },
        error(13, 1, 'bad arguments for power: state: Invalid input: expected boolean, received string'),
      ],
      ['2 system outside reach', () => user, { id: 21, cmd: 'bind', sys: 'sys-other', mod: 'Display', name: 'power' }, error(21, 2, 'access denied to system sys-other')],
      ['2 protected module', () => admin, { id: 22, cmd: 'bind', sys: 'sys-demo', mod: '_Display', name: 'power' }, error(22, 2, 'access denied to module _Display')],
      [
        '2 method above clearance',
        () => user,
        { id: 23, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'reboot', args: [] },
        error(23, 2, 'access denied: reboot requires support clearance'),
      ],
      [
        '3 driver raised',
        () => admin,
        { id: 31, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'volume', args: [500] },
        error(31, 3, 'module raised: volume out of range (RangeError)'),
      ],
      ['4 unknown command', () => user, { id: 41, cmd: 'launch', sys: 'sys-demo', mod: 'Display', name: 'x' }, error(41, 4, 'unknown command: launch')],
      ['5 no such system', () => admin, { id: 51, cmd: 'bind', sys: 'sys-nowhere', mod: 'Display', name: 'power' }, error(51, 5, 'system not found: sys-nowhere')],
      ['6 no such module', () => admin, { id: 61, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 3, name: 'power' }, error(61, 6, 'module not found: Display_3 in sys-demo')],
      ['7 exec timed out', () => admin, { id: 71, cmd: 'exec', sys: 'sys-test', mod: 'Slow', name: 'hang', args: [] }, error(71, 7, 'hang timed out after 1500 ms')],
    ];
    for (const [name, client, frame, expected] of rows) {
      it(name, async () => {
        const c = client();
        c.send(frame);
        assert.equal(await c.next(), expected);
      });
    }

    it('logs denials and unknown commands with the credential id and address, never the key', () => {
      const denial = logs.lines.find((l) => l.msg === 'access denied' && l.id === 21);
      assert.ok(denial, 'access denial logged');
      assert.equal(denial.credential, 'demo-user');
      assert.equal(denial.remote, '127.0.0.1');
      const suspicious = logs.lines.find((l) => String(l.msg).startsWith('unknown command') && l.id === 41);
      assert.ok(suspicious, 'unknown command logged');
      assert.equal(suspicious.credential, 'demo-user');
      assert.doesNotMatch(JSON.stringify(logs.lines), /demo-user-key|demo-admin-key/);
    });
  });

  describe('bind, unbind, notify', () => {
    it('binds, sends the current value, a repeated bind answers without re-sending, notifies carry the first id', async () => {
      const c = await connectControl(gw);
      await gw.gateway.drivers.exec('mod-display-2' as never, 'input', ['hdmi1'], adminCaller);
      c.send({ id: 1, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input' });
      assert.equal(await c.next(), `{"id":1,"type":"success",${meta('input', 'Display', 2)}}`);
      assert.equal(await c.next(), `{"id":1,"type":"notify","value":"hdmi1",${meta('input', 'Display', 2)}}`);
      c.send({ id: 2, cmd: 'BIND', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input' });
      assert.equal(await c.next(), `{"id":2,"type":"success",${meta('input', 'Display', 2)}}`);
      c.send({ id: 3, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input', args: ['hdmi2'] });
      const [a, b] = [await c.next(), await c.next()].sort();
      assert.equal(a, `{"id":1,"type":"notify","value":"hdmi2",${meta('input', 'Display', 2)}}`);
      assert.equal(b, `{"id":3,"type":"success","value":"hdmi2",${meta('input', 'Display', 2)},"code":200}`);
      // Setting the same value publishes nothing; an exec reply is the next frame.
      c.send({ id: 4, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input', args: ['hdmi2'] });
      assert.match(await c.next(), /^\{"id":4,"type":"success"/);
      c.send({ id: 5, cmd: 'unbind', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input' });
      assert.equal(await c.next(), '{"id":5,"type":"success"}');
      c.send({ id: 6, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input', args: ['displayport'] });
      assert.match(await c.next(), /^\{"id":6,"type":"success","value":"displayport"/);
      c.send({ id: 7, cmd: 'unbind', sys: 'sys-demo', mod: 'Display', index: 2, name: 'input' });
      assert.equal(await c.next(), '{"id":7,"type":"success"}');
      c.send({ id: 8, cmd: 'unbind', sys: 'sys-nowhere', mod: 'Nothing', name: 'never' });
      assert.equal(await c.next(), '{"id":8,"type":"success"}');
      await c.close();
    });

    it('sends nothing for an unset variable until it is set, and null when it is deleted', async () => {
      const c = await connectControl(gw);
      const store = gw.gateway.store;
      c.send({ id: 1, cmd: 'bind', sys: 'sys-demo', mod: 'Lights', name: 'scene_note' });
      assert.equal(await c.next(), `{"id":1,"type":"success",${meta('scene_note', 'Lights')}}`);
      c.send('ping');
      assert.equal(await c.next(), 'pong', 'no value was sent for the unset variable');
      await store.set('mod-lights-1' as never, 'scene_note', '{"a":[1,2]}');
      assert.equal(await c.next(), `{"id":1,"type":"notify","value":{"a":[1,2]},${meta('scene_note', 'Lights')}}`);
      await store.delete('mod-lights-1' as never, 'scene_note');
      assert.equal(await c.next(), `{"id":1,"type":"notify","value":null,${meta('scene_note', 'Lights')}}`);
      await c.close();
    });

    it('streams debug lines with the debug id, and ignore stops them', async () => {
      const c = await connectControl(gw);
      c.send({ id: 40, cmd: 'debug', sys: 'sys-demo', mod: 'mod-display-2', index: null, name: 'debug' });
      assert.equal(await c.next(), '{"id":40,"type":"success"}');
      c.send({ id: 41, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'volume', args: [33] });
      const frames = [await c.next(), await c.next()].sort();
      assert.equal(
        frames[0],
        '{"id":40,"type":"debug","msg":"volume changed to 33","meta":{"sys":"sys-demo","mod":"mod-display-2","index":1,"name":"debug"},"mod":"mod-display-2","level":"debug"}',
      );
      assert.match(frames[1]!, /^\{"id":41,"type":"success","value":33/);
      c.send({ id: 42, cmd: 'ignore', sys: 'sys-demo', mod: 'mod-display-2', index: null, name: 'ignore' });
      assert.equal(await c.next(), '{"id":42,"type":"success"}');
      c.send({ id: 43, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 2, name: 'volume', args: [34] });
      assert.match(await c.next(), /^\{"id":43,"type":"success","value":34/, 'no debug line after ignore');
      await c.close();
    });
  });

  describe('concurrency', () => {
    it('a slow exec does not delay a bind on the same socket', async () => {
      const c = await connectControl(gw);
      c.send({ id: 1, cmd: 'exec', sys: 'sys-test', mod: 'Slow', name: 'wait', args: [1_200] });
      c.send({ id: 2, cmd: 'bind', sys: 'sys-demo', mod: 'Display', name: 'volume' });
      assert.match(await c.next(), /^\{"id":2,"type":"success"/);
      assert.match(await c.next(), /^\{"id":2,"type":"notify"/);
      assert.deepEqual(c.unread(), [], 'the exec has not answered yet');
      assert.equal(await c.next(), `{"id":1,"type":"success","value":1200,${meta('wait', 'Slow', 1, 'sys-test')},"code":200}`);
      await c.close();
    });
  });
});

describe('control heartbeat', () => {
  it('sends an unsolicited pong every control.pongIntervalMs', async () => {
    const gw = await startControlGateway({ pongIntervalMs: 150 });
    try {
      const c = await connectControl(gw);
      assert.equal(await c.next(2_000), 'pong');
      assert.equal(await c.next(2_000), 'pong');
      await c.close();
    } finally {
      await gw.close();
    }
  });
});
