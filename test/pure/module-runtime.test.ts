import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { MemoryStatusStore } from '../../src/backends/memory/memory-status-store.js';
import { controlConfigSchema } from '../../src/config/control-schema.js';
import { moduleId, systemId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { buildSystemDirectory } from '../../src/control/config-system-directory.js';
import { type DriverRegistry, defineDriver, method, withCode } from '../../src/driver-api/driver-api.js';
import { ModuleRuntime } from '../../src/runtime/module-runtime.js';
import { registerSystemLookups } from '../../src/control/system-lookups.js';
import type { DriverLogLine } from '../../src/core/driver-host.js';
import { Changes } from '../suites/status-store.contract.js';
import { outcome, principal } from '../helpers/control-fakes.js';
import { FakeClock } from '../helpers/fake-clock.js';

const user = principal({ clearance: 'user' });
const support = principal({ clearance: 'support' });
const admin = principal({ clearance: 'admin' });
const mod = moduleId('mod-t');

/** A runtime with one module `mod-t` of `driver` in system `sys-t`, on the memory store and a manual clock. */
async function runtimeWith(driver: DriverRegistry[string], settings: Record<string, unknown> = {}, execTimeoutMs = 1_000) {
  const drivers: DriverRegistry = { test: driver };
  const control = controlConfigSchema.parse({
    systems: [{ id: 'sys-t', name: 'T', modules: ['mod-t'] }],
    modules: [{ id: 'mod-t', driver: 'test', settings }],
  });
  const store = new MemoryStatusStore();
  await store.start();
  const clock = new FakeClock();
  const lines: DriverLogLine[] = [];
  const directory = buildSystemDirectory(control, drivers);
  const runtime = new ModuleRuntime({
    directory,
    drivers,
    store,
    clock,
    log: silentLogger,
    execTimeoutMs,
    publishLine: (line) => lines.push(line),
  });
  await runtime.start();
  return { runtime, store, clock, lines, directory };
}

describe('driver API and module runtime', () => {
  it('validates positional arguments against the declared parameters before the call', async () => {
    const calls: unknown[] = [];
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load: () => ({
        methods: {
          move: method({ x: z.number().int(), label: z.string().optional() }, (args) => {
            calls.push(args);
            return args.x * 2;
          }),
        },
      }),
    });
    const { runtime } = await runtimeWith(driver);
    assert.deepEqual(outcome(await runtime.exec(mod, 'move', [21], user)), { value: 42, code: 200 });
    assert.deepEqual(outcome(await runtime.exec(mod, 'move', [1, 'a'], user)), { value: 2, code: 200 });
    await assert.rejects(runtime.exec(mod, 'move', ['x'], user), { code: 'bad_request', message: 'bad arguments for move: x: Invalid input: expected number, received string' });
    await assert.rejects(runtime.exec(mod, 'move', [], user), { code: 'bad_request', message: /^bad arguments for move: x: / });
    await assert.rejects(runtime.exec(mod, 'move', [1, 'a', 3], user), { code: 'bad_request', message: 'bad arguments for move: takes 2 argument(s), got 3' });
    await assert.rejects(runtime.exec(mod, 'toString', [], user), { code: 'bad_request', message: 'could not find function toString' });
    assert.deepEqual(calls, [{ x: 21 }, { x: 1, label: 'a' }]);
    assert.deepEqual(runtime.functions(mod)!.move, {
      arity: 2,
      params: { x: { type: 'integer', minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }, label: { type: 'string' } },
      order: ['x', 'label'],
      clearance: 'user',
    });
    await runtime.stop();
  });

  it('publishes status only on change, null on delete; exec answers after the writes are stored', async () => {
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load(m) {
        const status = m.status<{ mode: string; extra: number }>({ mode: 'idle', extra: 1 });
        return {
          methods: {
            mode: method({ value: z.string() }, ({ value }) => {
              status.set('mode', value);
              return status.get('mode');
            }),
            drop: method({}, () => status.delete('extra')),
            code: method({}, () => withCode({ queued: true }, 202)),
          },
        };
      },
    });
    const { runtime, store } = await runtimeWith(driver);
    const changes = new Changes();
    await store.watch(mod, 'mode', changes.onChange);
    const extra = new Changes();
    await store.watch(mod, 'extra', extra.onChange);
    await runtime.exec(mod, 'mode', ['busy'], user);
    assert.equal(await store.get(mod, 'mode'), '"busy"', 'stored by the time exec answers');
    await runtime.exec(mod, 'mode', ['busy'], user);
    await runtime.exec(mod, 'mode', ['idle'], user);
    assert.deepEqual(changes.seen, ['"busy"', '"idle"']);
    assert.deepEqual(outcome(await runtime.exec(mod, 'drop', [], user)), { value: null, code: 200 });
    assert.deepEqual(extra.seen, ['null']);
    assert.equal(await store.get(mod, 'extra'), undefined);
    assert.deepEqual(outcome(await runtime.exec(mod, 'code', [], user)), { value: { queued: true }, code: 202 });
    await runtime.stop();
  });

  it('restricts methods to support or admin clearance', async () => {
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load: () => ({
        methods: {
          service: method({}, () => 'serviced', { clearance: 'support' }),
          wipe: method({}, () => 'wiped', { clearance: 'admin' }),
        },
      }),
    });
    const { runtime } = await runtimeWith(driver);
    await assert.rejects(runtime.exec(mod, 'service', [], user), { code: 'forbidden', message: 'access denied: service requires support clearance' });
    assert.equal(outcome(await runtime.exec(mod, 'service', [], support)).value, 'serviced');
    await assert.rejects(runtime.exec(mod, 'wipe', [], support), { code: 'forbidden', message: 'access denied: wipe requires admin clearance' });
    assert.equal(outcome(await runtime.exec(mod, 'wipe', [], admin)).value, 'wiped');
    await runtime.stop();
  });

  it('runs timers until unload, then cancels them; a throwing timer is logged and keeps running', async () => {
    let ticks = 0;
    let afterRan = false;
    let unloaded = false;
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load(m) {
        m.every(100, () => {
          ticks += 1;
          if (ticks === 2) throw new TypeError('tick failed');
        });
        m.after(1_000, () => (afterRan = true));
        return { methods: {}, onUnload: () => void (unloaded = true) };
      },
    });
    const { runtime, clock, lines: published } = await runtimeWith(driver);
    for (let i = 0; i < 3; i++) clock.advance(100);
    const lines = published.map((line) => `${line.level}:${line.message}`);
    assert.equal(ticks, 3, 'the timer goes on after a throw');
    assert.ok(lines.includes('error:timer raised: tick failed (TypeError)'), lines.join('\n'));
    await runtime.stop();
    assert.equal(unloaded, true);
    assert.equal(clock.pending, 0, 'no timer left after unload');
    clock.advance(5_000);
    assert.equal(ticks, 3);
    assert.equal(afterRan, false);
  });

  it('validates and applies settings updates through the driver schema and its hook', async () => {
    const seen: unknown[] = [];
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({ speed: z.number().int().min(1).default(1) }),
      load(m) {
        return {
          methods: { speed: method({}, () => m.settings.speed) },
          onSettings: (settings) => void seen.push(settings),
        };
      },
    });
    const { runtime } = await runtimeWith(driver, { speed: 2 });
    assert.equal(outcome(await runtime.exec(mod, 'speed', [], user)).value, 2);
    await runtime.updateSettings(mod, { speed: 5 });
    assert.equal(outcome(await runtime.exec(mod, 'speed', [], user)).value, 5);
    assert.deepEqual(seen, [{ speed: 5 }]);
    await assert.rejects(runtime.updateSettings(mod, { speed: 0 }), { code: 'bad_request', message: /^module mod-t: settings\.speed: / });
    await runtime.stop();
  });

  it('publishes every log line of its modules, in order (the debug stream of every node)', async () => {
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load: (m) => ({ methods: { say: method({ text: z.string() }, ({ text }) => m.log.info(text)) } }),
    });
    const { runtime, lines } = await runtimeWith(driver);
    await runtime.exec(mod, 'say', ['hello'], user);
    await runtime.exec(mod, 'say', ['again'], user);
    assert.deepEqual(
      lines.filter((l) => l.level === 'info' && !l.message.startsWith('loaded')),
      [
        { module: 'mod-t', level: 'info', message: 'hello' },
        { module: 'mod-t', level: 'info', message: 'again' },
      ],
    );
    await runtime.stop();
  });

  it('turns a throw, a rejection and a hang into errors for the caller', async () => {
    class DeviceError extends Error {
      override name = 'DeviceError';
    }
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load: () => ({
        methods: {
          sync: method({}, () => {
            throw new DeviceError('boom');
          }),
          async: method({}, async () => Promise.reject(new Error('later'))),
          odd: method({}, () => {
            throw 'a string';
          }),
          hang: method({}, () => new Promise(() => {})),
          cyclic: method({}, () => {
            const o: Record<string, unknown> = {};
            o.self = o;
            return o;
          }),
        },
      }),
    });
    const { runtime, clock } = await runtimeWith(driver, {}, 500);
    await assert.rejects(runtime.exec(mod, 'sync', [], user), { code: 'request_failed', message: 'module raised: boom (DeviceError)' });
    await assert.rejects(runtime.exec(mod, 'async', [], user), { code: 'request_failed', message: 'module raised: later (Error)' });
    await assert.rejects(runtime.exec(mod, 'odd', [], user), { code: 'request_failed', message: 'module raised: a string (Error)' });
    await assert.rejects(runtime.exec(mod, 'cyclic', [], user), { code: 'request_failed', message: /^module raised: Converting circular structure to JSON.*\(TypeError\)$/s });
    const hanging = runtime.exec(mod, 'hang', [], user);
    clock.advance(500);
    await assert.rejects(hanging, { code: 'timeout', message: 'hang timed out after 500 ms' });
    await runtime.stop();
  });

  it('keeps running when a module fails to load; that module answers "not running"', async () => {
    const driver = defineDriver({
      name: 'Thing',
      settings: z.object({}),
      load: () => {
        throw new Error('no device');
      },
    });
    const { runtime } = await runtimeWith(driver);
    await assert.rejects(runtime.exec(mod, 'anything', [], user), { code: 'module_not_found', message: 'module mod-t is not running (load failed: module raised: no device (Error))' });
    assert.equal(runtime.functions(mod), undefined);
    assert.equal(runtime.runs(mod), false);
    assert.deepEqual(await runtime.load(mod), { running: false, reason: 'load failed: module raised: no device (Error)' });
    await runtime.stop();
  });

  it('registers each system lookup in the store', async () => {
    const driver = defineDriver({ name: 'Thing', settings: z.object({}), load: () => ({ methods: {} }) });
    const { runtime, store, directory } = await runtimeWith(driver);
    await registerSystemLookups(directory, store);
    assert.equal(await store.lookup(systemId('sys-t'), 'Thing', 1), 'mod-t');
    await runtime.stop();
  });
});
