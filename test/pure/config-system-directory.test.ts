import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError } from '../../src/config/load.js';
import { controlConfigSchema } from '../../src/config/control-schema.js';
import { moduleId, systemId, zoneId } from '../../src/core/ids.js';
import { buildSystemDirectory } from '../../src/control/config-system-directory.js';
import { type DriverRegistry, defineDriver } from '../../src/driver-api/driver-api.js';

const noop = (name: string) => defineDriver({ name, settings: z.object({ level: z.number().default(1) }), load: () => ({ methods: {} }) });
const drivers: DriverRegistry = { display: noop('Display'), camera: noop('Camera') };

function directory(control: unknown) {
  return buildSystemDirectory(controlConfigSchema.parse(control), drivers);
}

describe('buildSystemDirectory', () => {
  const dir = directory({
    zones: [{ id: 'zone-a', name: 'A' }],
    systems: [
      { id: 'sys-1', name: 'One', zones: ['zone-a'], modules: ['mod-cam', 'mod-d1', 'mod-left', 'mod-d2'] },
      { id: 'sys-2', name: 'Two', modules: ['mod-d2'] },
    ],
    modules: [
      { id: 'mod-d1', driver: 'display' },
      { id: 'mod-d2', driver: 'display', settings: { level: 3 } },
      { id: 'mod-left', driver: 'display', name: 'LeftDisplay' },
      { id: 'mod-cam', driver: 'camera' },
    ],
  });

  it('indexes modules by name among same-named modules, in system order; custom names count apart', () => {
    const sys1 = systemId('sys-1');
    assert.equal(dir.resolve(sys1, 'Display', 1), 'mod-d1');
    assert.equal(dir.resolve(sys1, 'Display', 2), 'mod-d2');
    assert.equal(dir.resolve(sys1, 'Display', 3), undefined);
    assert.equal(dir.resolve(sys1, 'LeftDisplay', 1), 'mod-left');
    assert.equal(dir.resolve(sys1, 'Camera', 1), 'mod-cam');
    assert.equal(dir.resolve(sys1, 'Display', 0), undefined);
    assert.equal(dir.resolve(sys1, 'display', 1), undefined, 'names are case-sensitive');
    assert.equal(dir.resolve(systemId('sys-2'), 'Display', 1), 'mod-d2', 'a module may sit in several systems');
    assert.equal(dir.resolve(systemId('sys-9'), 'Display', 1), undefined);
    assert.deepEqual(dir.lookupTable(sys1), { 'Camera/1': 'mod-cam', 'Display/1': 'mod-d1', 'LeftDisplay/1': 'mod-left', 'Display/2': 'mod-d2' });
  });

  it('keeps records in configuration order with settings parsed by the driver', () => {
    assert.deepEqual(
      dir.systems().map((s) => s.id),
      ['sys-1', 'sys-2'],
    );
    assert.deepEqual(dir.module(moduleId('mod-d1')), { id: 'mod-d1', driver: 'display', name: 'Display', settings: { level: 1 } });
    assert.deepEqual(dir.module(moduleId('mod-d2'))?.settings, { level: 3 });
    assert.deepEqual(dir.zone(zoneId('zone-a')), { id: 'zone-a', name: 'A' });
    assert.equal(dir.zones().length, 1);
  });

  it('throws one ConfigError listing every problem with the entry it is about', () => {
    assert.throws(
      () =>
        directory({
          zones: [
            { id: 'zone-a', name: 'A' },
            { id: 'zone-a', name: 'B' },
          ],
          simulators: [{ id: 'sim', kind: 'pjlink' }],
          systems: [{ id: 'sys-1', name: 'One', modules: ['mod-1', 'mod-1'] }],
          modules: [
            { id: 'mod-1', driver: 'display', settings: { level: 'high' } },
            { id: 'mod-2', driver: 'display', settings: { simulator: 'sim-x' } },
          ],
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems, [
          'control.zones[1] (zone-a): duplicate id (also control.zones[0])',
          'control.modules[0] (mod-1): settings.level: Invalid input: expected number, received string',
          'control.modules[1] (mod-2): settings.simulator: simulator "sim-x" is not defined in control.simulators',
          'control.systems[0] (sys-1): module "mod-1" is listed twice',
        ]);
        return true;
      },
    );
  });
});
