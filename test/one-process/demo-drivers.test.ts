import { outcome } from '../helpers/control-fakes.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../../src/core/credentials.js';
import { moduleId, systemId } from '../../src/core/ids.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { Changes } from '../suites/status-store.contract.js';

const admin: Principal = { id: 'test-admin', kind: 'api-key', clearance: 'admin', canPublish: false, systems: ['*'], zones: [], scopes: ['control'] };
const user: Principal = { ...admin, id: 'test-user', clearance: 'user' };

describe('demo configuration: systems and drivers wired into the gateway', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.close();
  });

  it('has the demo systems, with modules resolved by name and index in the directory and the store', async () => {
    const { directory, store } = gw.gateway;
    assert.deepEqual(
      directory.systems().map((s) => [s.id, s.name, s.zones]),
      [
        ['sys-demo', 'Demo Room', ['zone-demo']],
        ['sys-other', 'Other Room', []],
        ['sys-lab', 'Projector Lab', []],
      ],
    );
    assert.equal(directory.resolve(systemId('sys-demo'), 'Display', 2), 'mod-display-2');
    assert.equal(directory.resolve(systemId('sys-demo'), 'Lights', 1), 'mod-lights-1');
    assert.equal(directory.resolve(systemId('sys-demo'), 'Display', 3), undefined);
    assert.equal(await store.lookup(systemId('sys-demo'), 'Display', 1), 'mod-display-1');
    assert.equal(await store.lookup(systemId('sys-other'), 'Display', 1), 'mod-other-display-1');
  });

  it('display: initial status, exec returns the new value, the change is published and logged', async () => {
    const { store, drivers } = gw.gateway;
    const mod = moduleId('mod-display-1');
    assert.deepEqual(await store.getAll(mod), { power: 'false', volume: '50', input: '"hdmi1"' });
    const changes = new Changes();
    await store.watch(mod, 'power', changes.onChange);
    const lines: string[] = [];
    const stopDebug = await drivers.debug(mod, (line) => lines.push(`${line.level}:${line.message}`));
    assert.deepEqual(outcome(await drivers.exec(mod, 'power', [true], user)), { value: true, code: 200 });
    assert.deepEqual(await changes.until(1), ['true']);
    assert.deepEqual(lines, ['debug:power changed to true']);
    stopDebug();
    assert.deepEqual(outcome(await drivers.exec(mod, 'volume', [30], user)), { value: 30, code: 200 });
    assert.equal(await store.get(mod, 'volume'), '30');
  });

  it('display: volume out of range is the module raising; bad types are bad requests', async () => {
    const { drivers } = gw.gateway;
    const mod = moduleId('mod-display-2');
    await assert.rejects(drivers.exec(mod, 'volume', [500], user), { code: 'request_failed', message: 'module raised: volume out of range (RangeError)' });
    await assert.rejects(drivers.exec(mod, 'volume', [1.5], user), { code: 'request_failed' });
    await assert.rejects(drivers.exec(mod, 'volume', ['loud'], user), (err: Error & { code: string }) => {
      assert.equal(err.code, 'bad_request');
      assert.match(err.message, /^bad arguments for volume: level: .*expected number/);
      return true;
    });
    await assert.rejects(drivers.exec(mod, 'powr', [], user), { code: 'bad_request', message: 'could not find function powr' });
  });

  it('display: reboot needs support clearance', async () => {
    const { drivers } = gw.gateway;
    const mod = moduleId('mod-display-1');
    await assert.rejects(drivers.exec(mod, 'reboot', [], user), { code: 'forbidden', message: 'access denied: reboot requires support clearance' });
    assert.deepEqual(outcome(await drivers.exec(mod, 'reboot', [], admin)), { value: true, code: 200 });
  });

  it('lights: set_level and scenes; an unknown scene raises', async () => {
    const { drivers, store } = gw.gateway;
    const mod = moduleId('mod-lights-1');
    assert.equal(await store.get(mod, 'level'), '0');
    assert.deepEqual(outcome(await drivers.exec(mod, 'set_level', [25], user)), { value: 25, code: 200 });
    assert.deepEqual(outcome(await drivers.exec(mod, 'scene', ['full'], user)), { value: 100, code: 200 });
    assert.equal(await store.get(mod, 'level'), '100');
    await assert.rejects(drivers.exec(mod, 'scene', ['disco'], user), { code: 'request_failed', message: 'module raised: unknown scene disco (Error)' });
  });

  it('describes functions with arity, params and order', async () => {
    const fns = await gw.gateway.drivers.functions(moduleId('mod-display-1'));
    assert.deepEqual(Object.keys(fns).sort(), ['input', 'power', 'reboot', 'volume']);
    assert.deepEqual(fns.power, { arity: 1, params: { state: { type: 'boolean' } }, order: ['state'], clearance: 'user' });
    assert.equal(fns.reboot!.clearance, 'support');
    await assert.rejects(gw.gateway.drivers.functions(moduleId('mod-nope')), { code: 'module_not_found' });
  });

  it('an unknown module is not running', async () => {
    await assert.rejects(gw.gateway.drivers.exec(moduleId('mod-nope'), 'power', [true], admin), { code: 'module_not_found' });
  });

  it('reports the state store on /health', async () => {
    const res = await fetch(`${gw.url}/health`);
    const body = (await res.json()) as { backends: Record<string, { kind: string; state: string }> };
    assert.deepEqual(body.backends.state, { kind: 'memory', state: 'up' });
  });
});
