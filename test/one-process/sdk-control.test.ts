import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AccessDeniedError,
  AuthenticationError,
  BadRequestError,
  ControlClient,
  type ControlClientOptions,
  ModuleNotFoundError,
  NotificationClient,
  RequestFailedError,
  SystemNotFoundError,
  type WebSocketConstructor,
  type WebSocketLike,
} from '../../sdk/src/index.js';
import WebSocket from 'ws';
import { startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';

const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const display1 = { sys: 'sys-demo', mod: 'Display', index: 1 };

/** `ws` behind the face browsers show: an error event that never says why the upgrade failed. */
class BrowserLikeWebSocket implements WebSocketLike {
  static created = 0;
  private readonly ws: WebSocket;
  onopen: WebSocketLike['onopen'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  constructor(url: string) {
    BrowserLikeWebSocket.created += 1;
    this.ws = new WebSocket(url);
    this.ws.onopen = () => this.onopen?.({});
    this.ws.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
    this.ws.onerror = () => this.onerror?.({ type: 'error' });
    this.ws.onmessage = (e) => this.onmessage?.({ data: typeof e.data === 'string' ? e.data : String(e.data) });
  }
  get readyState(): number {
    return this.ws.readyState;
  }
  send(data: string): void {
    this.ws.send(data);
  }
  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}

/** Pulls values from an iterator until one is accepted (without ending the iteration, as `break` would). */
async function firstMatching<T>(values: AsyncIterableIterator<T>, accept: (v: T) => boolean): Promise<T> {
  for (;;) {
    const next = await values.next();
    if (next.done) throw new Error('iterator ended');
    if (accept(next.value)) return next.value;
  }
}

/** The control SDK against the real gateway (demo systems), and both clients across a gateway restart. */
describe('SDK ControlClient against the gateway', () => {
  let gw: RunningGateway;
  const clients: Array<{ close(): Promise<unknown> }> = [];
  const control = (extra: Partial<ControlClientOptions> = {}) => {
    const c = new ControlClient({ url: gw.url, apiKey: 'demo-admin-key', reconnect: { initialDelayMs: 50, maxDelayMs: 500, drainSpreadMs: 0 }, ...extra });
    clients.push(c);
    return c;
  };

  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw.close();
  });

  it('binds Display_1.power, sees the current value, execs power(true), sees the change', async () => {
    const c = control();
    const values = c.values(power);
    assert.equal(await firstMatching(values, () => true), false);
    const changed = firstMatching(values, (v) => v === true);
    const result = await c.exec(display1, 'power', [true], { decode: (v) => v === true });
    assert.deepEqual(result, { value: true, code: 200, meta: { ...display1, name: 'power' } });
    assert.equal(await changed, true);
    await values.return!();
    assert.deepEqual(c.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
    await c.exec(display1, 'power', [false]);
  });

  it('reports protocol errors as typed errors', async () => {
    const c = control();
    await assert.rejects(c.exec(display1, 'volume', [500]), (err: unknown) => err instanceof RequestFailedError && err.errorCode === 3 && /volume out of range/.test(err.message));
    await assert.rejects(c.exec(display1, 'powr'), (err: unknown) => err instanceof BadRequestError && err.errorCode === 1);
    await assert.rejects(c.bind({ sys: 'sys-nope', mod: 'Display', name: 'power' }), SystemNotFoundError);
    await assert.rejects(c.bind({ sys: 'sys-demo', mod: 'Display', index: 9, name: 'power' }), ModuleNotFoundError);
    const user = control({ apiKey: 'demo-user-key' });
    await assert.rejects(user.bind({ sys: 'sys-other', mod: 'Display', name: 'power' }), AccessDeniedError);
    await assert.rejects(user.exec(display1, 'reboot'), AccessDeniedError);
    assert.deepEqual(c.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
  });

  it('streams debug lines and stops on ignore', async () => {
    const c = control();
    const lines: string[] = [];
    let gotLine!: () => void;
    const got = new Promise<void>((resolve) => (gotLine = resolve));
    const stop = await c.debug({ sys: 'sys-demo', mod: 'mod-display-1' }, (line) => {
      lines.push(line.message);
      if (line.message.includes('volume changed to 42')) gotLine();
    });
    await c.exec(display1, 'volume', [42]);
    await got;
    assert.ok(lines.some((l) => l.includes('volume changed to 42')));
    await stop();
    assert.equal(c.counts.debugs, 0);
  });

  it('refuses a bad API key with AuthenticationError and does not retry', async () => {
    const c = control({ apiKey: 'not-a-key' });
    await assert.rejects(c.connect(), (err: unknown) => err instanceof AuthenticationError && err.status === 401);
    assert.equal((await c.closed()).byClient, false);
  });

  it('detects a refused key through the HTTP probe when the WebSocket hides the status, as browsers do', async () => {
    const c = control({ apiKey: 'not-a-key', WebSocket: BrowserLikeWebSocket as unknown as WebSocketConstructor, reconnect: { initialDelayMs: 50, maxAttempts: 3 } });
    await assert.rejects(c.connect(), (err: unknown) => err instanceof AuthenticationError && err.status === 401);
    assert.equal(BrowserLikeWebSocket.created, 1, 'refused at the first attempt, no retry');
  });

  it('survives a gateway restart on both channels: reconnects, re-joins, re-binds, command() resolves', async () => {
    const run = uniqueId('sdkr');
    const notify = new NotificationClient({ url: `${gw.wsUrl}/`, reconnect: { initialDelayMs: 50, maxDelayMs: 500, drainSpreadMs: 0 } });
    clients.push(notify);
    await notify.join('demo-token-alice');
    const c = control();
    const seen: unknown[] = [];
    let onValue: (v: unknown) => void = () => {};
    await c.watch(power, (v) => {
      seen.push(v);
      onValue(v);
    });
    const nextValue = (accept: (v: unknown) => boolean) => new Promise<unknown>((resolve) => (onValue = (v) => accept(v) && resolve(v)));
    const on = nextValue((v) => v === true);
    await c.exec(display1, 'power', [true]);
    await on;
    const command = notify.command(`cmd-${run}`, { timeoutMs: 20_000 });

    const port = gw.port;
    const rejoined = new Promise((resolve) => notify.once('joined', resolve));
    const reboundToFalse = nextValue((v) => v === false);
    await gw.close();
    gw = await startGateway({ port });
    await rejoined;
    // The new gateway starts with power off: the re-bind delivers it, then a new exec flips it again.
    await reboundToFalse;
    const onAgain = nextValue((v) => v === true);
    await c.exec(display1, 'power', [true]);
    await onAgain;
    assert.deepEqual(seen, [false, true, false, true]);

    const res = await fetch(`${gw.url}/api/notify/v1/profiles/alice/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
      body: JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `cmd-${run}`, command_status: 2, body: 'done after restart' } }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await command, { commandId: `cmd-${run}`, body: 'done after restart' });
  });
});
