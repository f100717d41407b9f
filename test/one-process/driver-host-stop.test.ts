import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { DriverHostProcess } from '../../src/runtime/hosts/driver-host-process.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * A host stopped while it is still loading its imports (a gateway that stops right after it started)
 * misses the disconnect unless it checks for it. The stop's kill timer is only a last resort, and on this
 * fake clock (never moved) it never fires: a host that missed the disconnect would hang the stop.
 */
describe('stopping a driver host that is still starting', () => {
  it('exits on its own when stopped right after the fork, three times in a row', { timeout: 20_000 }, async () => {
    for (let round = 1; round <= 3; round += 1) {
      const exits: string[] = [];
      const host = new DriverHostProcess({
        name: 'display',
        heartbeatIntervalMs: 1_000,
        heartbeatTimeoutMs: 60_000,
        maxOldSpaceMb: 64,
        execTimeoutMs: 1_000,
        clock: new FakeClock(Date.now()),
        log: silentLogger,
        onMessage: () => {},
        onExit: (reason) => exits.push(reason),
      });
      host.start();
      await host.stop();
      assert.deepEqual(exits, ['stopped'], `round ${round}`);
    }
  });
});
