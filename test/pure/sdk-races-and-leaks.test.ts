import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { RecentKeys } from '../../sdk/src/dedupe.js';
import {
  ClientClosedError,
  ControlClient,
  NotificationClient,
  UnexpectedValueError,
} from '../../sdk/src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeWebSocket, connectedControl, joinedNotify, joinedReply, state } from '../helpers/sdk-fakes.js';

/** Issue 17, second half: races around joining, types, and small leaks. */

const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const meta = { ...power };
const status = (id: string, commandStatus: 1 | 2 | 3, body: string) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: commandStatus, body } });

/** Captures what the SDK reports as uncaught listener errors (reportError), instead of crashing the test. */
function captureReportedErrors(): { errors: unknown[]; restore: () => void } {
  const errors: unknown[] = [];
  const holder = globalThis as { reportError?: (e: unknown) => void };
  const previous = holder.reportError;
  holder.reportError = (e) => errors.push(e);
  return { errors, restore: () => (previous ? (holder.reportError = previous) : delete holder.reportError) };
}

describe('SDK: joining races', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('sends no join with the old token after reconnecting when leave() was called during the outage', async () => {
    const clock = new FakeClock();
    const { client, ws } = await joinedNotify({ clock });
    let next = FakeWebSocket.nextInstance();
    ws.drop();
    clock.advance(100);
    // The next socket opens and drops at once: the automatic re-join is left waiting for a socket.
    const ws2 = await next;
    next = FakeWebSocket.nextInstance();
    ws2.accept();
    ws2.drop();
    await state(Promise.resolve());
    // A join() also waiting for the socket when leave() comes must not go out either.
    const joining = client.join('tok-bob');
    await client.leave();
    await assert.rejects(joining);
    clock.advance(200);
    await state(Promise.resolve());
    assert.equal(FakeWebSocket.instances.length, 2, 'no socket reopened: nothing to join');
    const ws3 = await (async () => {
      const connecting = client.connect();
      const created = await next;
      created.accept();
      await connecting;
      return created;
    })();
    await state(Promise.resolve());
    assert.deepEqual([...ws2.sent, ...ws3.sent], [], 'no joinChannel with tok-alice or tok-bob');
    await client.close();
  });

  it('drops a refreshToken result when leave() was called while the refresh ran', async () => {
    let release!: (token: string) => void;
    const { client, ws } = await joinedNotify({ refreshToken: () => new Promise<string>((resolve) => (release = resolve)) });
    const expired = new Promise((resolve) => client.once('expired', resolve));
    ws.deliver({ status: 401, data: { channelId: 'alice', message: 'Authorization token expired; channel left.' } });
    await expired;
    await client.leave();
    release('tok-fresh');
    await state(Promise.resolve());
    assert.deepEqual(
      ws.sent.map((f) => JSON.parse(f).action),
      ['joinChannel'],
      'only the first join: no join with the refreshed token',
    );
    assert.equal(client.channelId, undefined);
    await client.close();
  });

  it('resolves join() once joined on the next socket when the first drops with the join in flight', async () => {
    const clock = new FakeClock();
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, clock, reconnect: { initialDelayMs: 100, jitter: 0 } });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('tok-alice');
    const ws = await created;
    ws.accept();
    await ws.nextSent();
    const next = FakeWebSocket.nextInstance();
    ws.drop();
    assert.equal(await state(joining), 'pending', 'not rejected while the client re-joins by itself');
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    ws2.deliver(joinedReply((await ws2.nextSent()).correlationId));
    assert.deepEqual(await joining, { channelId: 'alice' });
    assert.equal(client.channelId, 'alice');
    await client.close();
  });

  it('lets two join() calls with the same token both resolve, with one joinChannel', async () => {
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0 });
    const created = FakeWebSocket.nextInstance();
    const first = client.join('tok-alice');
    const second = client.join('tok-alice');
    const ws = await created;
    ws.accept();
    ws.deliver(joinedReply((await ws.nextSent()).correlationId));
    assert.deepEqual(await Promise.all([first, second]), [{ channelId: 'alice' }, { channelId: 'alice' }]);
    assert.equal(ws.sent.length, 1);
    await client.close();
  });

  it('does not re-join later with a token whose join() timed out', async () => {
    const clock = new FakeClock();
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, clock, joinTimeoutMs: 1_000, reconnect: { initialDelayMs: 2_000, jitter: 0 } });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('tok-alice');
    const ws = await created;
    ws.accept();
    await ws.nextSent();
    ws.drop();
    clock.advance(1_000);
    await assert.rejects(joining);
    clock.advance(1_000);
    assert.equal(FakeWebSocket.instances.length, 1, 'no reconnection for a join the caller was told failed');
    await client.close();
  });
});

describe('SDK: types', () => {
  it('checks event names and value types at compile time', () => {
    // Never run: the assertions are the compiler's. Each @ts-expect-error fails the build if the line compiles.
    const typeChecks = async (notify: NotificationClient, control: ControlClient) => {
      // @ts-expect-error a misspelt event name
      notify.on('comandStatus', () => {});
      // @ts-expect-error a misspelt event name
      control.on('notfy', () => {});
      notify.on('commandStatus', (e) => e.commandId.toUpperCase());
      // @ts-expect-error exec<T> is no unchecked cast: a type needs a decode function
      await control.exec<boolean>(power, 'power', [true]);
      const executed: boolean = (await control.exec(power, 'power', [true], { decode: (v) => v === true })).value;
      const raw: unknown = (await control.exec(power, 'power')).value;
      // @ts-expect-error without decode the value is unknown
      const notNumber: number = (await control.exec(power, 'volume')).value;
      for await (const on of control.values(power, { decode: (v): boolean => v === true })) {
        const checked: boolean = on;
        void checked;
      }
      await control.watch({ ...power, name: 'volume' }, (level: number) => level.toFixed(), { decode: Number });
      return [executed, raw, notNumber];
    };
    assert.equal(typeof typeChecks, 'function');
  });

  it('rejects a value its decode refuses with UnexpectedValueError', async () => {
    FakeWebSocket.reset();
    const { client, ws } = await connectedControl();
    const exec = client.exec(power, 'power', [true], {
      decode: (v) => {
        if (typeof v !== 'boolean') throw new TypeError('not a boolean');
        return v;
      },
    });
    const frame = await ws.nextSent();
    ws.deliver({ id: frame.id, type: 'success', value: 'yes' });
    await assert.rejects(exec, (err: unknown) => err instanceof UnexpectedValueError && err.value === 'yes');
    await client.close();
  });
});

describe('SDK: small leaks', () => {
  beforeEach(() => FakeWebSocket.reset());
  let reported: ReturnType<typeof captureReportedErrors> | undefined;
  afterEach(() => reported?.restore());

  it('cancels the 503 retry sleep on close(): the join rejects at once and no timer is left', async () => {
    const clock = new FakeClock();
    const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, clock, reconnect: { initialDelayMs: 10_000, jitter: 0 } });
    const created = FakeWebSocket.nextInstance();
    const joining = client.join('tok-alice');
    const ws = await created;
    ws.accept();
    ws.deliver({ correlationId: (await ws.nextSent()).correlationId, status: 503, data: { message: 'The message broker is unavailable; try again.' } });
    await state(Promise.resolve());
    await client.close();
    await assert.rejects(joining, ClientClosedError);
    assert.equal(clock.pending, 0, 'no timer outlives the client');
  });

  it('ends values() iterators when the variable is unbound or the client closes, and leaves nothing behind', async () => {
    const { client, ws } = await connectedControl();
    const values = client.values(power);
    const bind = await ws.nextSent();
    ws.deliver({ id: bind.id, type: 'success', meta });
    ws.deliver({ id: bind.id, type: 'notify', value: true, meta });
    assert.deepEqual(await values.next(), { done: false, value: true });
    const waiting = values.next();
    const unbinding = client.unbind(power);
    const unbind = await ws.nextSent();
    ws.deliver({ id: unbind.id, type: 'success' });
    await unbinding;
    assert.equal(await state(waiting), 'resolved');
    assert.deepEqual(await waiting, { done: true, value: undefined });

    const statusListeners = client.status.listenerCount();
    const iterators = Array.from({ length: 100 }, () => client.values(power));
    const rebind = await ws.nextSent();
    ws.deliver({ id: rebind.id, type: 'success', meta });
    const ends = iterators.map((it) => it.next());
    await client.close();
    for (const end of await Promise.all(ends)) assert.equal(end.done, true);
    assert.equal(client.status.listenerCount(), statusListeners);
    assert.deepEqual(client.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
  });

  it('never sends a bind or debug that was undone while it waited for a socket', async () => {
    const clock = new FakeClock();
    const { client, ws } = await connectedControl({ clock });
    ws.drop();
    const iterator = client.values(power);
    const debugging = client.debug({ sys: 'sys-demo', mod: 'Display' }, () => {});
    await iterator.return!();
    await client.ignore({ sys: 'sys-demo', mod: 'Display' });
    await assert.rejects(debugging);
    const next = FakeWebSocket.nextInstance();
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    await state(Promise.resolve());
    assert.deepEqual(ws2.sent, []);
    assert.deepEqual(client.counts, { pending: 0, bindings: 0, debugs: 0, requestIds: 0 });
    await client.close();
  });

  it('isolates a throwing watch, debug or onPending listener like an event listener', async () => {
    reported = captureReportedErrors();
    const { client, ws } = await connectedControl();
    const seen: unknown[] = [];
    const w1 = client.watch(power, () => {
      throw new Error('watcher bug');
    });
    const bind = await ws.nextSent();
    ws.deliver({ id: bind.id, type: 'success', meta });
    await w1;
    await client.watch(power, (v) => seen.push(v));
    const lines: string[] = [];
    const d1 = client.debug(power, () => {
      throw new Error('debug bug');
    });
    const debug = await ws.nextSent();
    ws.deliver({ id: debug.id, type: 'success' });
    await d1;
    await client.debug(power, (l) => lines.push(l.message));
    ws.deliver({ id: bind.id, type: 'notify', value: 7, meta });
    ws.deliver({ id: debug.id, type: 'debug', msg: 'line', mod: 'mod-display-1', level: 'debug' });
    assert.deepEqual(seen, [7]);
    assert.deepEqual(lines, ['line']);

    const { client: notify, ws: nws } = await joinedNotify();
    const pendings: string[] = [];
    void notify.command('c1', { onPending: () => { throw new Error('pending bug'); } }).catch(() => {});
    void notify.command('c1', { onPending: (e) => pendings.push(e.body) }).catch(() => {});
    nws.deliver(status('c1', 1, 'queued'));
    assert.deepEqual(pendings, ['queued']);
    assert.deepEqual((reported.errors as Error[]).map((e) => e.message).sort(), ['debug bug', 'pending bug', 'watcher bug']);
    await client.close();
    await notify.close();
  });

  it('dedupes by message identity, bounded by count and characters, whatever the message size', () => {
    const keys = new RecentKeys(1_000, 200);
    for (let i = 0; i < 50; i++) keys.seen(`X-DPT-CAB-ID\u0000cmd-${i}\u00002`);
    assert.ok(keys.heldChars <= 200, `${keys.heldChars} chars held`);
    assert.ok(keys.size < 50);
  });

  it('keeps only identities, not frames: a 100 kB message costs the window a short key', async () => {
    const { client, ws } = await joinedNotify({ dedupeMaxChars: 4_096 });
    const seen: number[] = [];
    client.on('commandStatus', (e) => seen.push(e.body.length));
    const big = status('big', 2, 'x'.repeat(100_000));
    ws.deliver(big);
    ws.deliver(big);
    assert.deepEqual(seen, [100_000], 'the redelivery is dropped although the window holds 4 k characters');
    await client.close();
  });
});
