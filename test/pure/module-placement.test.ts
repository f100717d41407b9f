import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryFleetBus, MemoryFleetSpace, MemoryLeases, MemoryMembership, MemoryModuleOverrides } from '../../src/backends/memory/memory-fleet.js';
import { type ModuleId, moduleId } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { ModulePlacement } from '../../src/fleet/module-placement.js';
import { ownerOf } from '../../src/fleet/rendezvous.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const modules = Array.from({ length: 40 }, (_, i) => moduleId(`mod-${i}`));
const timing = { heartbeatIntervalMs: 1_000, memberTtlMs: 3_000, leaseTtlMs: 5_000 };

/** Loads and unloads of every node, in order; fails the test the moment a module would run twice. */
class Devices {
  readonly runningOn = new Map<ModuleId, string>();
  readonly events: string[] = [];

  runtimeOf(node: string) {
    return {
      load: async (module: ModuleId) => {
        const other = this.runningOn.get(module);
        assert.equal(other, undefined, `${module} loaded on ${node} while running on ${other}`);
        this.runningOn.set(module, node);
        this.events.push(`load ${module} ${node}`);
        return { running: true };
      },
      unload: async (module: ModuleId) => {
        if (this.runningOn.get(module) === node) this.runningOn.delete(module);
        this.events.push(`unload ${module} ${node}`);
      },
    };
  }
}

function fleetOf(clock: FakeClock) {
  const space = new MemoryFleetSpace(clock);
  const devices = new Devices();
  const node = (name: string) => {
    const placement = new ModulePlacement({
      nodeId: name,
      modules,
      membership: new MemoryMembership(space, name, timing),
      leases: new MemoryLeases(space, name, timing.leaseTtlMs),
      overrides: new MemoryModuleOverrides(space),
      runtime: devices.runtimeOf(name),
      clock,
      log: silentLogger,
      metrics: new GatewayMetrics(),
      renewIntervalMs: timing.heartbeatIntervalMs,
      stopMarginMs: 1_000,
    });
    return { placement, bus: new MemoryFleetBus(space, name) };
  };
  return { space, devices, node };
}

/** Lets queued promise chains (reconcile, loads) run between clock steps. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
async function advance(clock: FakeClock, ms: number, step = 250) {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await settle();
    await settle();
  }
}

describe('rendezvous hashing', () => {
  it('gives every module one owner, spreads them, and moves only the joining node’s share', () => {
    const three = ['n1', 'n2', 'n3'];
    const before = new Map(modules.map((m) => [m, ownerOf(m, three)!]));
    const counts = three.map((n) => [...before.values()].filter((o) => o === n).length);
    assert.ok(counts.every((c) => c >= 5), `spread: ${counts}`);
    const after = new Map(modules.map((m) => [m, ownerOf(m, [...three, 'n4'])!]));
    for (const m of modules) assert.ok(after.get(m) === before.get(m) || after.get(m) === 'n4', `${m} moved between old nodes`);
    assert.ok([...after.values()].includes('n4'));
    assert.equal(ownerOf(modules[0]!, []), undefined);
  });
});

describe('ModulePlacement over the memory fleet', () => {
  it('runs each module on exactly one node; a joining node takes its share only after the old owner unloaded', async () => {
    const clock = new FakeClock();
    const { devices, node } = fleetOf(clock);
    const a = node('a');
    await a.placement.start();
    assert.equal(devices.runningOn.size, modules.length, 'alone, node a runs every module');
    const b = node('b');
    await b.placement.start();
    await advance(clock, 3_000);
    const onB = modules.filter((m) => ownerOf(m, ['a', 'b']) === 'b');
    assert.ok(onB.length > 0);
    for (const m of modules) assert.equal(devices.runningOn.get(m), ownerOf(m, ['a', 'b']));
    for (const m of onB) {
      const unloadA = devices.events.indexOf(`unload ${m} a`);
      const loadB = devices.events.indexOf(`load ${m} b`);
      assert.ok(unloadA >= 0 && loadB > unloadA, `${m}: unloaded on a before loaded on b`);
    }
    await b.placement.stop();
    await settle();
    await advance(clock, 1_000);
    assert.equal(devices.runningOn.size, modules.length);
    assert.ok([...devices.runningOn.values()].every((n) => n === 'a'), 'a stopping node hands its modules back at once');
    await a.placement.stop();
    assert.equal(devices.runningOn.size, 0);
  });

  it('a node cut off from the store stops its modules before their leases run out; another node takes them after', async () => {
    const clock = new FakeClock();
    const { space, devices, node } = fleetOf(clock);
    const a = node('a');
    const b = node('b');
    await a.placement.start();
    await b.placement.start();
    await advance(clock, 3_000);
    const onA = modules.filter((m) => devices.runningOn.get(m) === 'a');
    assert.ok(onA.length > 0);
    space.cut.add('a');
    const cutAt = clock.now();
    // Until lease - margin (4 s) after a's last renewal, a keeps them; b cannot take them meanwhile.
    await advance(clock, 2_500);
    for (const m of onA) assert.equal(devices.runningOn.get(m), 'a');
    await advance(clock, 2_000);
    for (const m of onA) assert.notEqual(devices.runningOn.get(m), 'a', `${m} stopped on the cut node`);
    const stoppedBy = clock.now();
    await advance(clock, 4_000);
    for (const m of onA) assert.equal(devices.runningOn.get(m), 'b', `${m} taken over by b`);
    assert.ok(stoppedBy - cutAt <= timing.leaseTtlMs);
    // Back from the cut: a's share returns to it, again unloaded on b before loaded on a.
    space.cut.delete('a');
    await advance(clock, 4_000);
    for (const m of modules) assert.equal(devices.runningOn.get(m), ownerOf(m, ['a', 'b']));
    await Promise.all([a.placement.stop(), b.placement.stop()]);
  });

  it('a killed node (no goodbye) loses its modules to the survivors once its membership and leases expire', async () => {
    const clock = new FakeClock();
    const { space, devices, node } = fleetOf(clock);
    const a = node('a');
    const b = node('b');
    await a.placement.start();
    await b.placement.start();
    await advance(clock, 3_000);
    const onA = modules.filter((m) => devices.runningOn.get(m) === 'a');
    // A kill -9: the node's timers die with it and nothing is said; its loads stay counted as running
    // on the device side until its connections would drop, which a killed process does at once.
    space.cut.add('a');
    for (const m of onA) devices.runningOn.delete(m);
    await advance(clock, 8_000);
    for (const m of onA) assert.equal(devices.runningOn.get(m), 'b');
    await b.placement.stop();
  });
});
