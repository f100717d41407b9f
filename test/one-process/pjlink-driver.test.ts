import { outcome } from '../helpers/control-fakes.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryStatusStore } from '../../src/backends/memory/memory-status-store.js';
import { controlConfigSchema } from '../../src/config/control-schema.js';
import { systemClock } from '../../src/core/clock.js';
import type { Principal } from '../../src/core/credentials.js';
import { moduleId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { bundledDrivers } from '../../src/drivers/bundled-drivers.js';
import { buildSystemDirectory } from '../../src/control/config-system-directory.js';
import { ModuleRuntime } from '../../src/runtime/module-runtime.js';
import { PjlinkSimulator } from '../../src/simulators/pjlink-simulator.js';
import { Changes } from '../suites/status-store.contract.js';
import { startGateway } from '../helpers/gateway.js';

const caller: Principal = { id: 'test', kind: 'api-key', clearance: 'user', canPublish: false, systems: ['*'], zones: [], scopes: ['control'] };
const mod = moduleId('mod-projector-t');

describe('PJLink projector driver against the simulated projector over TCP', () => {
  let simulator: PjlinkSimulator;
  let store: MemoryStatusStore;
  let runtime: ModuleRuntime;
  let port: number;

  before(async () => {
    simulator = new PjlinkSimulator({ password: 'secret', name: 'Lab projector' });
    port = (await simulator.start()).port;
    store = new MemoryStatusStore();
    await store.start();
    const control = controlConfigSchema.parse({
      systems: [{ id: 'sys-t', name: 'T', modules: [mod] }],
      modules: [
        {
          id: mod,
          driver: 'pjlink',
          settings: { host: '127.0.0.1', port, password: 'secret', pollMs: 60_000, reconnectInitialMs: 20, reconnectMaxMs: 200 },
        },
      ],
    });
    runtime = new ModuleRuntime({
      directory: buildSystemDirectory(control, bundledDrivers),
      drivers: bundledDrivers,
      store,
      clock: systemClock,
      log: silentLogger,
      execTimeoutMs: 5_000,
    });
  });
  after(async () => {
    await runtime.stop();
    await simulator.stop();
    await store.close();
  });

  it('connects (with PJLink authentication), reads the projector state, and controls it', async () => {
    const connected = new Changes();
    await store.watch(mod, 'connected', connected.onChange);
    const name = new Changes();
    await store.watch(mod, 'name', name.onChange);
    await runtime.start();
    assert.deepEqual(await connected.until(2), ['false', 'true']);
    assert.deepEqual(await name.until(1), ['"Lab projector"']);
    assert.equal(await store.get(mod, 'power'), 'false');
    assert.equal(await store.get(mod, 'input'), '"31"');

    await assert.rejects(runtime.exec(mod, 'input', ['32'], caller), { code: 'request_failed', message: 'module raised: INPT 32: unavailable time (ERR3) (PjlinkError)' });
    assert.deepEqual(outcome(await runtime.exec(mod, 'power', [true], caller)), { value: true, code: 200 });
    assert.equal(simulator.power, '1');
    assert.deepEqual(outcome(await runtime.exec(mod, 'input', ['32'], caller)), { value: '32', code: 200 });
    assert.equal(simulator.input, '32');
    assert.equal(await store.get(mod, 'input'), '"32"');
    await assert.rejects(runtime.exec(mod, 'input', ['99'], caller), { code: 'bad_request', message: /^bad arguments for input: code: / });
    await assert.rejects(runtime.exec(mod, 'input', ['59'], caller), { code: 'request_failed', message: 'module raised: INPT 59: out of parameter (ERR2) (PjlinkError)' });
    assert.deepEqual(outcome(await runtime.exec(mod, 'inputs', [], caller)), { value: ['11', '12', '31', '32', '51'], code: 200 });
  });

  it('reconnects with backoff after the device drops the connection, and reads the state again', async () => {
    const connected = new Changes();
    await store.watch(mod, 'connected', connected.onChange);
    simulator.power = '0'; // changed on the device while the driver was away
    simulator.dropConnections();
    assert.deepEqual(await connected.until(2), ['false', 'true']);
    const power = new Changes();
    await store.watch(mod, 'power', power.onChange);
    if ((await store.get(mod, 'power')) !== 'false') await power.until(1);
    assert.equal(await store.get(mod, 'power'), 'false');
    assert.deepEqual(outcome(await runtime.exec(mod, 'power', [true], caller)), { value: true, code: 200 });
  });

  it('keeps retrying while the device is down and answers "not connected" meanwhile', async () => {
    const connected = new Changes();
    await store.watch(mod, 'connected', connected.onChange);
    await simulator.stop();
    assert.deepEqual(await connected.until(1), ['false']);
    await assert.rejects(runtime.exec(mod, 'power', [false], caller), { code: 'request_failed', message: /^module raised: projector not connected/ });
    simulator = new PjlinkSimulator({ password: 'secret', port });
    await simulator.start();
    assert.deepEqual(await connected.until(2), ['false', 'true']);
    assert.deepEqual(outcome(await runtime.exec(mod, 'power', [false], caller)), { value: false, code: 200 });
  });
});

describe('demo: the projector lab runs against the simulated device the gateway starts', () => {
  it('is connected after start and controllable', async () => {
    const gw = await startGateway();
    try {
      const projector = moduleId('mod-projector-1');
      const connected = new Changes();
      await gw.gateway.store.watch(projector, 'connected', connected.onChange);
      if ((await gw.gateway.store.get(projector, 'connected')) !== 'true') await connected.until(1);
      assert.deepEqual(outcome(await gw.gateway.drivers.exec(projector, 'power', [true], caller)), { value: true, code: 200 });
      assert.equal(await gw.gateway.store.get(projector, 'power'), 'true');
    } finally {
      await gw.close();
    }
  });
});
