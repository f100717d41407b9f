import { outcome } from '../helpers/control-fakes.js';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import type { Principal } from '../../src/core/credentials.js';
import type { DriverLogLine } from '../../src/core/driver-host.js';
import { moduleId } from '../../src/core/ids.js';
import { defineDriver, method } from '../../src/driver-api/driver-api.js';
import { demoControl, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { connectControl } from '../helpers/control-gateway.js';
import { TestClient, join } from '../helpers/ws-client.js';

const caller: Principal = { id: 'test', kind: 'api-key', clearance: 'admin', canPublish: false, systems: ['*'], zones: [], scopes: ['control'] };

/** Everything a careless driver can do wrong, short of blocking the event loop. */
const faultyDriver = defineDriver({
  name: 'Faulty',
  settings: z.object({}),
  load(mod) {
    mod.every(10, () => {
      throw new Error('timer exploded');
    });
    mod.every(15, async () => {
      throw new SyntaxError('async timer exploded');
    });
    return {
      methods: {
        sync: method({}, () => {
          throw new TypeError('sync failure');
        }),
        rejects: method({}, () => Promise.reject(new RangeError('async failure'))),
        later: method({}, () => {
          mod.after(1, () => {
            throw new Error('deferred failure');
          });
          return 'scheduled';
        }),
      },
      onUnload() {
        throw new Error('unload failure');
      },
    };
  },
});

describe('a faulty driver never takes the gateway down', () => {
  let gw: RunningGateway;
  const mod = moduleId('mod-faulty-1');
  before(async () => {
    const control = demoControl() as { systems: unknown[]; modules: unknown[] };
    gw = await startGateway(
      {
        control: {
          ...control,
          systems: [...control.systems, { id: 'sys-faulty', name: 'Faulty Room', modules: ['mod-faulty-1'] }],
          modules: [...control.modules, { id: 'mod-faulty-1', driver: 'faulty' }],
        },
      },
      { drivers: { faulty: faultyDriver } },
    );
  });
  after(async () => {
    await gw.close();
  });

  it('reports sync throws, rejections and timer throws, and keeps serving', async () => {
    const lines: DriverLogLine[] = [];
    let sawBothTimers: () => void;
    const timersSeen = new Promise<void>((resolve) => (sawBothTimers = resolve));
    const stop = await gw.gateway.drivers.debug(mod, (line) => {
      lines.push(line);
      const text = lines.map((l) => l.message).join('\n');
      if (text.includes('timer raised: timer exploded (Error)') && text.includes('timer raised: async timer exploded (SyntaxError)') && text.includes('deferred failure')) sawBothTimers();
    });

    await assert.rejects(gw.gateway.drivers.exec(mod, 'sync', [], caller), { code: 'request_failed', message: 'module raised: sync failure (TypeError)' });
    await assert.rejects(gw.gateway.drivers.exec(mod, 'rejects', [], caller), { code: 'request_failed', message: 'module raised: async failure (RangeError)' });
    assert.deepEqual(outcome(await gw.gateway.drivers.exec(mod, 'later', [], caller)), { value: 'scheduled', code: 200 });
    await timersSeen;
    stop();
    assert.ok(lines.some((l) => l.level === 'error' && l.message === 'sync raised: sync failure (TypeError)'));

    // Still serving: HTTP, the notification channel, and the other modules.
    const health = await fetch(`${gw.url}/health`);
    assert.equal(health.status, 200);
    const client = await TestClient.connect(gw.wsUrl);
    const joined = await client.request(join('demo-token-alice'));
    assert.equal(joined.status, 200);
    await client.close();
    assert.deepEqual(outcome(await gw.gateway.drivers.exec(moduleId('mod-display-1'), 'input', ['hdmi2'], caller)), { value: 'hdmi2', code: 200 });
  });

  it('over the control channel: error 3 for the raising method, then the socket and the gateway carry on', async () => {
    const control = await connectControl(gw);
    try {
      assert.equal(
        await control.request({ id: 1, cmd: 'exec', sys: 'sys-faulty', mod: 'Faulty', name: 'sync', args: [] }).then(JSON.stringify),
        '{"id":1,"type":"error","msg":"module raised: sync failure (TypeError)","error_code":3,"code":500}',
      );
      assert.equal(
        await control.request({ id: 2, cmd: 'exec', sys: 'sys-faulty', mod: 'Faulty', name: 'rejects', args: [] }).then(JSON.stringify),
        '{"id":2,"type":"error","msg":"module raised: async failure (RangeError)","error_code":3,"code":500}',
      );
      const ok = await control.request({ id: 3, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'power', args: [true] });
      assert.deepEqual([ok.id, ok.type, ok.value], [3, 'success', true]);
    } finally {
      await control.close();
    }
  });
});
