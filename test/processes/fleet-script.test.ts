import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { demoControl, uniqueId } from '../helpers/gateway.js';
import { processFleetSettled } from '../helpers/gateway-process.js';
import { TestClient } from '../helpers/ws-client.js';

/** A port nobody listens on right now (the script needs fixed ports, as a person would give them). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `npm run fleet`: two nodes on the local RabbitMQ and Redis, one broker and one state between them. */
describe('npm run fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-fleet-'));
  let script: ChildProcess | undefined;
  after(() => {
    if (script && script.exitCode === null) script.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts two nodes that share the broker and the state; SIGINT stops both', async () => {
    const ports = [await freePort(), await freePort()];
    const name = uniqueId('fleet');
    const config = join(dir, 'config.json');
    // The demo, with its simulated projector on a free port so that parallel runs do not meet.
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync('config/demo.json', 'utf8')), control: demoControl() }));
    script = spawn(process.execPath, ['scripts/fleet.mjs', '--ports', ports.join(','), '--name', name], {
      env: { ...process.env, SWITCHBOARD_CONFIG: config, QUEUE_PREFIX: `${name}.`, REDIS_KEY_PREFIX: `${name}:`, RETENTION_QUEUE_EXPIRES_MS: '60000', LOG_FORMAT: 'json', AMQP_URL: '', REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => script!.on('exit', resolve));
    let stderr = '';
    script.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));

    const listening = new Map<string, number>();
    await new Promise<void>((resolve, reject) => {
      void exited.then((code) => reject(new Error(`fleet exited with ${code}: ${stderr}`)));
      createInterface({ input: script!.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; node?: string; port?: number };
          if (entry.msg === 'listening') listening.set(entry.node!, entry.port!);
        } catch {
          return;
        }
        if (listening.size === 2) resolve();
      });
    });
    assert.deepEqual(Object.fromEntries(listening), { [`${name}-1`]: ports[0], [`${name}-2`]: ports[1] });
    const [one, two] = ports.map((port) => `http://127.0.0.1:${port}`) as [string, string];

    // Notifications: joined on node 1, published on node 2.
    const client = await TestClient.connect(`ws://127.0.0.1:${ports[0]}/`);
    const joined = await client.request({ action: 'joinChannel', correlationId: 'j', data: { authorizationToken: 'demo-token-alice' } });
    assert.equal(joined.status, 200);
    const message = JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: name, command_status: 2, body: 'across nodes' } });
    const published = await fetch(`${two}/api/notify/v1/profiles/alice/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
      body: message,
    });
    assert.equal(published.status, 202);
    assert.equal(await client.next(), message);
    await client.close();

    // Control state: switched on through node 2, read on node 1, once the two agree where each module
    // runs (right after a fleet starts, modules move, and a demo module that moves starts again from its
    // initial values).
    const headers = { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' };
    await processFleetSettled([{ url: one }, { url: two }]);
    const exec = await fetch(`${two}/api/engine/v2/systems/sys-demo/Display_2/power`, { method: 'POST', headers, body: '[true]' });
    assert.equal(exec.status, 200);
    assert.equal(await (await fetch(`${one}/api/engine/v2/systems/sys-demo/Display_2/power`, { headers })).text(), 'true');

    script.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    for (const url of [one, two]) await assert.rejects(fetch(`${url}/health`), 'the node stopped');
  });
});
