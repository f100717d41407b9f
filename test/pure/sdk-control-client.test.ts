import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import {
  AccessDeniedError,
  AuthenticationError,
  BadRequestError,
  ConnectionLostError,
  ControlClient,
  ControlError,
  ControlParseError,
  ModuleNotFoundError,
  RequestFailedError,
  SystemNotFoundError,
  UnexpectedFailureError,
  UnknownCommandError,
} from '../../sdk/src/index.js';
import { FakeWebSocket } from '../helpers/sdk-fakes.js';

const asBoolean = (v: unknown): boolean => {
  if (typeof v !== 'boolean') throw new TypeError(`not a boolean: ${JSON.stringify(v)}`);
  return v;
};
const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const meta = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };

async function connectedClient() {
  const client = new ControlClient({
    url: 'http://gateway.test:8080',
    apiKey: 'k 1',
    WebSocket: FakeWebSocket,
    heartbeatIntervalMs: 0,
    reconnect: { initialDelayMs: 1, jitter: 0 },
  });
  const created = FakeWebSocket.nextInstance();
  const connecting = client.connect();
  const ws = await created;
  ws.accept();
  await connecting;
  return { client, ws };
}

describe('SDK ControlClient (fake socket)', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('connects to the control path with the API key in the query', async () => {
    const { client, ws } = await connectedClient();
    assert.equal(ws.url, 'ws://gateway.test:8080/api/engine/v2/systems/control?api-key=k+1');
    await client.close();
  });

  it('binds, watches values, execs with typed results', async () => {
    const { client, ws } = await connectedClient();
    const seen: unknown[] = [];
    const watching = client.watch(power, (v) => seen.push(v));
    const bind = await ws.nextSent();
    assert.deepEqual(bind, { id: bind.id, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' });
    ws.deliver({ id: bind.id, type: 'success', meta });
    const stop = await watching;
    ws.deliver({ id: bind.id, type: 'notify', value: false, meta });
    const exec = client.exec({ sys: 'sys-demo', mod: 'Display' }, 'power', [true], { decode: asBoolean });
    const execFrame = await ws.nextSent();
    assert.deepEqual(execFrame, { id: execFrame.id, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 1, name: 'power', args: [true] });
    ws.deliver({ id: execFrame.id, type: 'success', value: true, meta, code: 200 });
    ws.deliver({ id: bind.id, type: 'notify', value: true, meta });
    assert.deepEqual(await exec, { value: true, code: 200, meta });
    assert.deepEqual(seen, [false, true]);
    assert.equal(client.value(power), true);
    const stopping = stop();
    const unbind = await ws.nextSent();
    assert.deepEqual(unbind, { id: unbind.id, cmd: 'unbind', sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' });
    ws.deliver({ id: unbind.id, type: 'success' });
    await stopping;
    assert.deepEqual(client.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
    await client.close();
  });

  it('binds a variable once per socket however many watchers come and go', async () => {
    const { client, ws } = await connectedClient();
    const first = client.watch(power, () => {});
    const bind = await ws.nextSent();
    ws.deliver({ id: bind.id, type: 'success', meta });
    await first;
    ws.deliver({ id: bind.id, type: 'notify', value: false, meta });
    for (let i = 0; i < 1_000; i++) {
      const seen: unknown[] = [];
      const stop = await client.watch(power, (v) => seen.push(v));
      assert.deepEqual(seen, [false], 'a new watcher gets the last value at once');
      await stop();
    }
    assert.equal(ws.sent.length, 1, 'no second bind, no unbind while the first watcher stays');
    assert.deepEqual(client.counts, { pending: 0, bindings: 1, debugs: 0, requestIds: 1 });
    await client.close();
  });

  it('turns every error_code into its own ControlError subclass', async () => {
    const { client, ws } = await connectedClient();
    const classes = [ControlParseError, BadRequestError, AccessDeniedError, RequestFailedError, UnknownCommandError, SystemNotFoundError, ModuleNotFoundError, UnexpectedFailureError];
    for (const [code, Class] of classes.entries()) {
      const exec = client.exec({ sys: 'sys-demo', mod: 'Display' }, 'volume', [500]);
      const frame = await ws.nextSent();
      ws.deliver({ id: frame.id, type: 'error', msg: `failure ${code}`, error_code: code, code: 500 });
      await assert.rejects(exec, (err: unknown) => err instanceof Class && err instanceof ControlError && err.errorCode === code && err.message === `failure ${code}` && err.requestId === frame.id);
    }
    await client.close();
  });

  it('re-binds and re-debugs after a reconnection and does not repeat an unchanged value', async () => {
    const { client, ws } = await connectedClient();
    const seen: unknown[] = [];
    const watching = client.watch(power, (v) => seen.push(v));
    const bind = await ws.nextSent();
    ws.deliver({ id: bind.id, type: 'success', meta });
    await watching;
    ws.deliver({ id: bind.id, type: 'notify', value: false, meta });
    const lines: string[] = [];
    const debugging = client.debug({ sys: 'sys-demo', mod: 'mod-display-1' }, (l) => lines.push(l.message));
    const debug = await ws.nextSent();
    assert.equal(debug.cmd, 'debug');
    ws.deliver({ id: debug.id, type: 'success' });
    await debugging;
    const inFlight = client.exec({ sys: 'sys-demo', mod: 'Display' }, 'reboot');
    await ws.nextSent();

    const created = FakeWebSocket.nextInstance();
    ws.drop();
    await assert.rejects(inFlight, ConnectionLostError);
    const ws2 = await created;
    ws2.accept();
    const rebinds = [await ws2.nextSent(), await ws2.nextSent()];
    const rebind = rebinds.find((f) => f.cmd === 'bind');
    const redebug = rebinds.find((f) => f.cmd === 'debug');
    assert.ok(rebind && redebug);
    assert.notEqual(rebind.id, bind.id);
    ws2.deliver({ id: rebind.id, type: 'success', meta });
    ws2.deliver({ id: rebind.id, type: 'notify', value: false, meta });
    ws2.deliver({ id: rebind.id, type: 'notify', value: true, meta });
    ws2.deliver({ id: redebug.id, type: 'success' });
    ws2.deliver({ id: redebug.id, type: 'debug', msg: 'power changed to true', meta: { ...meta, name: 'debug' }, mod: 'mod-display-1', level: 'debug' });
    assert.deepEqual(seen, [false, true]);
    assert.deepEqual(lines, ['power changed to true']);
    await client.close();
  });

  it('yields values through an async iterator and unbinds when the loop ends', async () => {
    const { client, ws } = await connectedClient();
    const iterating = (async () => {
      const values: unknown[] = [];
      for await (const value of client.values(power)) {
        values.push(value);
        if (values.length === 2) break;
      }
      return values;
    })();
    const bind = await ws.nextSent();
    ws.deliver({ id: bind.id, type: 'success', meta });
    ws.deliver({ id: bind.id, type: 'notify', value: 1, meta });
    ws.deliver({ id: bind.id, type: 'notify', value: 2, meta });
    const unbind = await ws.nextSent();
    assert.equal(unbind.cmd, 'unbind');
    ws.deliver({ id: unbind.id, type: 'success' });
    assert.deepEqual(await iterating, [1, 2]);
    assert.equal(client.counts.bindings, 0);
    await client.close();
  });

  it('treats a refused upgrade (401) as final: AuthenticationError, closed', async () => {
    const client = new ControlClient({ url: 'ws://gateway.test', apiKey: 'wrong', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0 });
    const created = FakeWebSocket.nextInstance();
    const connecting = client.connect();
    (await created).refuse(401);
    await assert.rejects(connecting, (err: unknown) => err instanceof AuthenticationError && err.status === 401);
    const info = await client.closed();
    assert.equal(info.byClient, false);
    assert.ok(info.error instanceof AuthenticationError);
    assert.equal(FakeWebSocket.instances.length, 1, 'no retry');
  });
});
