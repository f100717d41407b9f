import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { RunningGateway } from '../helpers/gateway.js';
import { startControlGateway } from '../helpers/control-gateway.js';

const jwtSecret = 'control-rest-secret-0123456789ab';
const admin = { 'X-API-Key': 'demo-admin-key' };
const user = { 'X-API-Key': 'demo-user-key' };

describe('control REST endpoints under /api/engine/v2', () => {
  let gw: RunningGateway;
  const get = (path: string, headers: Record<string, string> = admin) => fetch(`${gw.url}/api/engine/v2${path}`, { headers });
  const post = (path: string, body: string, headers: Record<string, string> = admin) =>
    fetch(`${gw.url}/api/engine/v2${path}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body });

  before(async () => {
    gw = await startControlGateway({ jwt: { secret: jwtSecret } });
  });
  after(() => gw.close());

  it('refuses without a credential (401), with a bad one (401), without the scope (403)', async () => {
    const none = await get('/systems', {});
    assert.equal(none.status, 401);
    assert.match(((await none.json()) as { error: string }).error, /missing credential/);
    const bad = await get('/systems', { 'X-API-Key': 'nope' });
    assert.deepEqual([bad.status, await bad.json()], [401, { error: 'unknown API key' }]);
    const guest = await new SignJWT({ sub: 'g', scope: 'guest' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(jwtSecret));
    const forbidden = await get('/systems', { Authorization: `Bearer ${guest}` });
    assert.equal(forbidden.status, 403);
    // A token without exp would never expire: refused (control.jwt.allowNoExpiry lets it in).
    const forever = await new SignJWT({ sub: 'f', scope: 'public' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(jwtSecret));
    const noExpiry = await get('/systems', { Authorization: `Bearer ${forever}` });
    assert.equal(noExpiry.status, 401);
    assert.match(((await noExpiry.json()) as { error: string }).error, /exp/);
  });

  it('lists systems with q, zone_id, limit, offset and X-Total-Count, filtered to the credential', async () => {
    const all = await get('/systems');
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('x-total-count'), '4');
    assert.deepEqual(((await all.json()) as Array<{ id: string }>).map((s) => s.id), ['sys-demo', 'sys-other', 'sys-lab', 'sys-test']);
    const page = await get('/systems?limit=1&offset=1');
    assert.equal(page.headers.get('x-total-count'), '4');
    assert.deepEqual(((await page.json()) as Array<{ id: string }>).map((s) => s.id), ['sys-other']);
    const q = await get('/systems?q=other');
    assert.deepEqual(((await q.json()) as Array<{ id: string }>).map((s) => s.id), ['sys-other']);
    const zone = await get('/systems?zone_id=zone-demo');
    assert.deepEqual(((await zone.json()) as Array<{ id: string }>).map((s) => s.id), ['sys-demo']);
    const mine = await get('/systems', user);
    assert.equal(mine.headers.get('x-total-count'), '1');
    assert.equal((await get('/systems?limit=0')).status, 400);
  });

  it('reads a system, complete with module_data and zone_data, and its zones', async () => {
    const plain = (await (await get('/systems/sys-demo')).json()) as Record<string, unknown>;
    assert.deepEqual(plain, { id: 'sys-demo', name: 'Demo Room', zones: ['zone-demo'], modules: ['mod-display-1', 'mod-display-2', 'mod-lights-1'] });
    const complete = (await (await get('/systems/sys-demo?complete=true')).json()) as {
      module_data: Array<{ id: string; name: string; running: boolean }>;
      zone_data: Array<{ id: string }>;
    };
    assert.deepEqual(complete.module_data.map((m) => [m.id, m.name, m.running]), [
      ['mod-display-1', 'Display', true],
      ['mod-display-2', 'Display', true],
      ['mod-lights-1', 'Lights', true],
    ]);
    assert.deepEqual(complete.zone_data.map((z) => z.id), ['zone-demo']);
    assert.deepEqual(((await (await get('/systems/sys-demo/zones')).json()) as Array<{ id: string }>).map((z) => z.id), ['zone-demo']);
    assert.equal((await get('/systems/sys-nope')).status, 404);
    const denied = await get('/systems/sys-other', user);
    assert.deepEqual([denied.status, await denied.json()], [403, { error: 'access denied to system sys-other' }]);
  });

  it('describes functions by clearance', async () => {
    const fns = (await (await get('/systems/sys-demo/functions/Display_1', user)).json()) as Record<string, { arity: number; order: string[] }>;
    assert.deepEqual(Object.keys(fns).sort(), ['input', 'power', 'volume']);
    assert.deepEqual(fns.power, { arity: 1, params: { state: { type: 'boolean' } }, order: ['state'] });
    const adminFns = (await (await get('/systems/sys-demo/functions/Display')).json()) as Record<string, unknown>;
    assert.ok('reboot' in adminFns);
  });

  it('reads module state and one key as raw JSON, and execs with a JSON array', async () => {
    const exec = await post('/systems/sys-demo/Display_2/volume', '[42]');
    assert.equal(exec.status, 200);
    assert.equal(await exec.text(), '42');
    const state = (await (await get('/systems/sys-demo/Display_2')).json()) as Record<string, unknown>;
    assert.equal(state.volume, 42);
    const key = await get('/systems/sys-demo/Display_2/volume');
    assert.equal(await key.text(), '42');
    assert.equal((await get('/systems/sys-demo/Display_2/nothing_here')).status, 404);
    const raised = await post('/systems/sys-demo/Display_2/volume', '[500]');
    assert.deepEqual([raised.status, await raised.json()], [500, { error: 'module raised: volume out of range (RangeError)' }]);
    const notArray = await post('/systems/sys-demo/Display_2/volume', '{"level":1}');
    assert.deepEqual([notArray.status, await notArray.json()], [400, { error: 'body must be a JSON array of arguments' }]);
    const above = await post('/systems/sys-demo/Display_1/reboot', '[]', user);
    assert.equal(above.status, 403);
    assert.equal((await post('/systems/sys-demo/Display_9/power', '[true]')).status, 404);
  });

  it('lists zones and modules', async () => {
    const zones = await get('/zones');
    assert.equal(zones.headers.get('x-total-count'), '1');
    assert.deepEqual(await zones.json(), [{ id: 'zone-demo', name: 'Demo Building', description: 'Zone of the demo room' }]);
    assert.equal((await get('/zones/zone-demo', user)).status, 200);
    assert.equal((await get('/zones/zone-nope')).status, 404);
    const mods = (await (await get('/modules?control_system_id=sys-other')).json()) as Array<{ id: string; control_system_id: string }>;
    assert.deepEqual(mods.map((m) => [m.id, m.control_system_id]), [['mod-other-display-1', 'sys-other']]);
    assert.equal((await get('/modules?control_system_id=sys-other', user)).status, 403);
    const visible = (await (await get('/modules', user)).json()) as Array<{ id: string }>;
    assert.deepEqual(visible.map((m) => m.id), ['mod-display-1', 'mod-display-2', 'mod-lights-1']);
  });
});
