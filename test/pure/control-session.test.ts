import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControlSession } from '../../src/control/control-session.js';
import { ControlCommands } from '../../src/control/control-commands.js';
import { ExecRateLimits } from '../../src/control/exec-rate-limits.js';
import type { Principal } from '../../src/core/credentials.js';
import { GatewayError } from '../../src/core/errors.js';
import type { ModuleId, SystemId, ZoneId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { FakeDirectory, FakeHost, FakeStore, principal } from '../helpers/control-fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeConnection } from '../helpers/fake-connection.js';

const mod = (id: string) => id as ModuleId;

function setup(who: Principal = principal()) {
  const directory = new FakeDirectory(
    [
      { id: 'sys-a' as SystemId, name: 'A', zones: ['zone-a' as ZoneId], modules: [mod('m-d1'), mod('m-d2'), mod('m-l1')] },
      { id: 'sys-b' as SystemId, name: 'B', zones: [], modules: [mod('m-b1')] },
    ],
    [
      { id: mod('m-d1'), driver: 'display', name: 'Display', settings: {} },
      { id: mod('m-d2'), driver: 'display', name: 'Display', settings: {} },
      { id: mod('m-l1'), driver: 'lights', name: 'Lights', settings: {} },
      { id: mod('m-b1'), driver: 'display', name: 'Display', settings: {} },
    ],
  );
  const store = new FakeStore();
  let release: (v: unknown) => void = () => {};
  const host = new FakeHost({
    'm-d1': {
      power: { run: async ([state]) => (await store.set(mod('m-d1'), 'power', JSON.stringify(state)), state) },
      slow: { run: () => new Promise((resolve) => (release = resolve)) },
      reboot: { clearance: 'support', run: () => true },
    },
  });
  const clock = new FakeClock();
  const connection = new FakeConnection();
  const session = new ControlSession({
    connection,
    principal: who,
    directory,
    store,
    commands: new ControlCommands({ directory, host, clock, execTimeoutMs: 1_000, maxArgsBytes: 1_024, rateLimits: new ExecRateLimits(20, clock) }),
    host,
    clock,
    log: silentLogger,
    metrics: new GatewayMetrics(),
    options: { pongIntervalMs: 80_000, maxBindingsPerSocket: 3, execsPerSecondPerSocket: 5 },
  });
  const send = (frame: unknown) => session.onText(JSON.stringify(frame));
  return { session, connection, store, host, clock, send, release: (v: unknown) => release(v) };
}

const bind = (id: number, name = 'power', extra: Record<string, unknown> = {}) => ({ id, cmd: 'bind', sys: 'sys-a', mod: 'Display', index: 1, name, ...extra });
const metaText = '"meta":{"sys":"sys-a","mod":"Display","index":1,"name":"power"}';

describe('ControlSession', () => {
  it('answers ping with pong and sends an unsolicited pong every interval', () => {
    const { session, connection, clock } = setup();
    session.onText('ping');
    assert.deepEqual(connection.frames, ['pong']);
    clock.advance(80_000);
    clock.advance(80_000);
    assert.deepEqual(connection.frames, ['pong', 'pong', 'pong']);
    session.onClose();
    assert.equal(clock.pending, 0);
  });

  it('binds: success, current value, changes with the bind id; a repeated bind subscribes once and re-sends nothing', async () => {
    const { connection, store, send } = setup();
    await store.set(mod('m-d1'), 'power', 'false');
    send(bind(1));
    assert.equal(await connection.next(), `{"id":1,"type":"success",${metaText}}`);
    assert.equal(await connection.next(), `{"id":1,"type":"notify","value":false,${metaText}}`);
    send(bind(2));
    assert.equal(await connection.next(), `{"id":2,"type":"success",${metaText}}`);
    assert.equal(store.watcherCount('m-d1', 'power'), 1);
    await store.set(mod('m-d1'), 'power', 'true');
    assert.equal(await connection.next(), `{"id":1,"type":"notify","value":true,${metaText}}`);
    await store.delete(mod('m-d1'), 'power');
    assert.equal(await connection.next(), `{"id":1,"type":"notify","value":null,${metaText}}`);
    assert.deepEqual(connection.unread(), []);
  });

  it('sends nothing for an unset variable until it is set; unbind stops it and always succeeds', async () => {
    const { connection, store, send } = setup();
    send(bind(1, 'input'));
    assert.match(await connection.next(), /^\{"id":1,"type":"success"/);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(connection.unread(), []);
    await store.set(mod('m-d1'), 'input', '"hdmi2"');
    assert.match(await connection.next(), /^\{"id":1,"type":"notify","value":"hdmi2"/);
    send({ id: 2, cmd: 'unbind', sys: 'sys-a', mod: 'Display', index: 1, name: 'input' });
    assert.equal(await connection.next(), '{"id":2,"type":"success"}');
    assert.equal(store.watcherCount('m-d1', 'input'), 0);
    send({ id: 3, cmd: 'unbind', sys: 'sys-nope', mod: 'X', name: 'y' });
    assert.equal(await connection.next(), '{"id":3,"type":"success"}');
  });

  it('handles requests concurrently and times out an exec that never answers', async () => {
    const { connection, clock, send, release } = setup();
    send({ id: 1, cmd: 'exec', sys: 'sys-a', mod: 'Display', name: 'slow', args: [] });
    send(bind(2));
    assert.match(await connection.next(), /^\{"id":2,"type":"success"/);
    clock.advance(1_000);
    assert.equal(await connection.next(), '{"id":1,"type":"error","msg":"slow timed out after 1000 ms","error_code":7,"code":500}');
    release('late');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(connection.unread(), []);
  });

  it('execs and replies with the raw value, meta and code', async () => {
    const { connection, send } = setup();
    send({ id: 4, cmd: 'exec', sys: 'sys-a', mod: 'Display', index: 1, name: 'power', args: [true] });
    assert.equal(await connection.next(), `{"id":4,"type":"success","value":true,${metaText},"code":200}`);
  });

  it('caps bindings per socket and exec argument size with error 1 (spec "Limits")', async () => {
    const { connection, send } = setup();
    for (const [id, name] of [
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ] as const) {
      send(bind(id, name));
      assert.match(await connection.next(), new RegExp(`^\\{"id":${id},"type":"success"`));
    }
    send(bind(4, 'd'));
    assert.deepEqual(JSON.parse(await connection.next()), { id: 4, type: 'error', msg: 'too many bindings (at most 3 per socket)', error_code: 1, code: 500 });
    send(bind(1, 'a'));
    assert.match(await connection.next(), /^\{"id":1,"type":"success"/, 'a repeated bind still answers');
    send(bind(6, 'n'.repeat(100_000)));
    assert.deepEqual(JSON.parse(await connection.next()), { id: 6, type: 'error', msg: 'field "name" is longer than 256 characters', error_code: 1, code: 500 });
    send({ id: 5, cmd: 'exec', sys: 'sys-a', mod: 'Display', index: 1, name: 'power', args: ['x'.repeat(2_000)] });
    const tooLarge = JSON.parse(await connection.next()) as { error_code: number; msg: string };
    assert.equal(tooLarge.error_code, 1);
    assert.match(tooLarge.msg, /^arguments too large/);
  });

  it('limits execs per socket with error 1 "too many requests", with room again as time passes', async () => {
    const { connection, send, clock } = setup();
    const answers: Array<{ type: string; error_code?: number; msg?: string }> = [];
    for (let id = 1; id <= 12; id++) send({ id, cmd: 'exec', sys: 'sys-a', mod: 'Display', index: 1, name: 'power', args: [true] });
    for (let i = 0; i < 12; i++) answers.push(JSON.parse(await connection.next()));
    assert.equal(answers.filter((a) => a.type === 'success').length, 10, 'a burst of twice the rate');
    assert.deepEqual(answers.filter((a) => a.type === 'error').map((a) => [a.error_code, a.msg]), [[1, 'too many requests'], [1, 'too many requests']]);
    clock.advance(1_000);
    send({ id: 13, cmd: 'exec', sys: 'sys-a', mod: 'Display', index: 1, name: 'power', args: [true] });
    assert.match(await connection.next(), /"type":"success"/);
  });

  it('refuses with the error table codes', async () => {
    const { connection, send } = setup();
    const cases: Array<[unknown, number]> = [
      [{ ...bind(1), sys: 'sys-zzz' }, 5],
      [{ ...bind(2), sys: 'sys-b' }, 2],
      [{ ...bind(3), mod: '_Internal' }, 2],
      [{ ...bind(4), index: 3 }, 6],
      [{ id: 5, cmd: 'exec', sys: 'sys-a', mod: 'Display', name: 'reboot' }, 2],
      [{ id: 6, cmd: 'exec', sys: 'sys-a', mod: 'Display', name: 'powr' }, 1],
      [{ id: 7, cmd: 'nope', sys: 'sys-a', mod: 'Display', name: 'x' }, 4],
    ];
    for (const [frame, code] of cases) {
      send(frame);
      const reply = JSON.parse(await connection.next()) as { id: number; type: string; error_code: number; code: number };
      assert.equal(reply.type, 'error');
      assert.equal(reply.id, (frame as { id: number }).id);
      assert.equal(reply.error_code, code, JSON.stringify(frame));
      assert.equal(reply.code, 500);
    }
  });

  it('streams debug lines with the debug id (by module id or name) until ignore', async () => {
    const { connection, host, send } = setup();
    send({ id: 9, cmd: 'debug', sys: 'sys-a', mod: 'm-d1', index: null, name: 'debug' });
    assert.equal(await connection.next(), '{"id":9,"type":"success"}');
    send({ id: 10, cmd: 'debug', sys: 'sys-a', mod: 'Display', index: 1 });
    assert.equal(await connection.next(), '{"id":10,"type":"success"}');
    host.emit('m-d1', 'power changed to true');
    assert.equal(
      await connection.next(),
      '{"id":9,"type":"debug","msg":"power changed to true","meta":{"sys":"sys-a","mod":"m-d1","index":1,"name":"debug"},"mod":"m-d1","level":"debug"}',
    );
    assert.deepEqual(connection.unread(), []);
    send({ id: 11, cmd: 'ignore', sys: 'sys-a', mod: 'm-d1', index: null, name: 'ignore' });
    assert.equal(await connection.next(), '{"id":11,"type":"success"}');
    host.emit('m-d1', 'after ignore');
    assert.deepEqual(connection.unread(), []);
  });

  it('answers 7 when the status store is unavailable, without a stack', async () => {
    const { connection, store, send } = setup();
    store.watch = async () => {
      throw new GatewayError('unavailable', 'status store unavailable');
    };
    store.get = async () => {
      throw new TypeError('socket hang up at /app/node_modules/ioredis/x.js:1');
    };
    send(bind(1));
    assert.equal(await connection.next(), '{"id":1,"type":"error","msg":"status store unavailable","error_code":7,"code":500}');
  });

  it('answers 7 with a generic message for an unexpected failure', async () => {
    const { connection, store, send } = setup();
    store.watch = async () => {
      throw new TypeError('socket hang up at /app/node_modules/ioredis/x.js:1');
    };
    send(bind(1));
    assert.equal(await connection.next(), '{"id":1,"type":"error","msg":"unexpected failure","error_code":7,"code":500}');
  });

  it('releases watches and debug streams on close', async () => {
    const { session, connection, store, host, send } = setup();
    send(bind(1));
    await connection.next();
    send({ id: 2, cmd: 'debug', sys: 'sys-a', mod: 'm-d1' });
    await connection.next();
    session.onClose();
    assert.equal(store.watcherCount('m-d1', 'power'), 0);
    assert.equal(host.debugListeners.get('m-d1')?.size, 0);
  });
});
