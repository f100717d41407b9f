import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectControl, startControlGateway } from '../helpers/control-gateway.js';
import type { RunningGateway } from '../helpers/gateway.js';
import { scrape, value } from '../helpers/prometheus.js';

/** Exec and control-error metrics move for execs over the socket and over REST alike. */
describe('GET /metrics for the control channel', () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startControlGateway({ execTimeoutMs: 300 });
  });
  after(() => gw.close());

  it('counts execs by outcome, whether over the socket or REST, and error frames by code', async () => {
    const before = await scrape(gw.url);
    const client = await connectControl(gw);
    try {
      const ok = await client.request({ id: 1, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 1, name: 'volume', args: [20] });
      assert.equal(ok.type, 'success', JSON.stringify(ok));
      const raised = await client.request({ id: 2, cmd: 'exec', sys: 'sys-demo', mod: 'Display', index: 1, name: 'volume', args: [500] });
      assert.equal(raised.error_code, 3);
      const hung = await client.request({ id: 3, cmd: 'exec', sys: 'sys-test', mod: 'Slow', index: 1, name: 'hang', args: [] });
      assert.equal(hung.error_code, 7);
    } finally {
      await client.close();
    }
    const rest = await fetch(`${gw.url}/api/engine/v2/systems/sys-demo/Display_1/power`, {
      method: 'POST',
      headers: { 'x-api-key': 'demo-admin-key', 'content-type': 'application/json' },
      body: '[true]',
    });
    assert.equal(rest.status, 200);
    const after = await scrape(gw.url);
    const delta = (series: string) => value(after, series) - value(before, series);
    assert.equal(delta('switchboard_control_execs_total{outcome="success"}'), 2, 'one over the socket, one over REST');
    assert.equal(delta('switchboard_control_execs_total{outcome="error"}'), 1);
    assert.equal(delta('switchboard_control_execs_total{outcome="timeout"}'), 1);
    assert.equal(delta('switchboard_control_exec_duration_seconds_count{outcome="success"}'), 2);
    assert.equal(delta('switchboard_control_errors_total{code="3"}'), 1);
    assert.equal(delta('switchboard_control_errors_total{code="7"}'), 1);
  });
});
