import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { adminCaller } from '../helpers/control-gateway.js';
import { runTsClient, runTsClientLifecycle } from '../helpers/ts-client-run.js';

const jwtSecret = 'ts-client-test-secret-0123456789';

/** Issue 3 "Must show 1": the stock PlaceOS client, unmodified, against the gateway (API key and JWT). */
describe('@placeos/ts-client against the control channel', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({ control: { jwt: { secret: jwtSecret } } });
  });
  after(() => gw.close());

  const expectScenario = (seen: Awaited<ReturnType<typeof runTsClient>>) => {
    const configured = gw.gateway.directory.systems().map((s) => s.id);
    assert.deepEqual(seen.systems, { total: configured.length, ids: configured }, 'querySystems() over REST');
    assert.equal(seen.initial, false, 'the current value of Display_1.power');
    assert.equal(seen.execResult, true, 'power(true) returns the new value');
    assert.equal(seen.notified, true, 'the notify of the change');
    assert.deepEqual(seen.volumeError, {
      id: (seen.volumeError as { id: number }).id,
      type: 'error',
      msg: 'module raised: volume out of range (RangeError)',
      error_code: 3,
      code: 500,
    });
  };

  it('works with an API key', async () => {
    await gw.gateway.drivers.exec('mod-display-1' as never, 'power', [false], adminCaller);
    expectScenario(await runTsClient({ host: `127.0.0.1:${gw.port}`, sys: 'sys-demo', apiKey: 'demo-admin-key' }));
  });

  it('works with a PlaceOS JWT', async () => {
    await gw.gateway.drivers.exec('mod-display-1' as never, 'power', [false], adminCaller);
    const jwt = await new SignJWT({ sub: 'user-ts', scope: ['public'], u: { n: 'TS', e: 'ts@example.com', p: 0, r: [] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(jwtSecret));
    expectScenario(await runTsClient({ host: `127.0.0.1:${gw.port}`, sys: 'sys-demo', jwt }));
  });

  it('shows, stops, starts and updates a module with its lifecycle functions (issue 15)', async () => {
    const seen = await runTsClientLifecycle({ host: `127.0.0.1:${gw.port}`, sys: 'sys-lab', apiKey: 'demo-admin-key', lifecycleModule: 'mod-projector-1' });
    assert.equal(seen.shown.id, 'mod-projector-1');
    assert.equal(seen.shown.running, true);
    assert.equal(seen.shown.control_system_id, 'sys-lab');
    assert.equal(seen.shown.custom_name, 'Projector');
    assert.equal(seen.afterStop.running, false);
    assert.equal(seen.afterStart.running, true);
    assert.equal((seen.updated.settings as Record<string, unknown>).pollMs, 400, 'updateModule changed the settings');
    assert.equal(seen.state.connected, true);
    assert.equal(seen.connected, true);
  });
});
