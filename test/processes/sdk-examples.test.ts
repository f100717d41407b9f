import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

/** Runs a compiled SDK example as its own process; `onLine` sees each stdout line as it comes. */
function runExample(name: string, url: string, onLine: (line: string) => void = () => {}): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`dist/sdk/examples/${name}.js`], { env: { ...process.env, SWITCHBOARD_URL: url } });
    const lines: string[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        onLine(line);
      }
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill(), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`example ${name} exited with ${code}: ${stderr}`));
      else resolve({ code, lines });
    });
  });
}

/** The README's SDK examples are these files, and they run against a real gateway. */
describe('SDK examples', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(() => gw.close());

  const publish = (body: unknown) =>
    fetch(`${gw.url}/api/notify/v1/profiles/alice/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
      body: JSON.stringify(body),
    });

  it('notify example: joins, waits for the command and the download link', async () => {
    const { lines } = await runExample('notify', gw.wsUrl, (line) => {
      if (!line.startsWith('waiting')) return;
      void (async () => {
        await publish({ data: { type: 'X-DPT-CAB-ID', id: '23f7978a', command_status: 1, body: 'queued' } });
        await publish({ data: { type: 'X-DPT-CAB-ID', id: '23f7978a', command_status: 2, body: 'Command completed successfully' } });
        await publish({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'b24b68f6', output_type: 1, body: 'https://download.example/f?auth=t' } });
      })();
    });
    assert.deepEqual(lines, [
      'joined alice',
      'waiting up to 60 s for command 23f7978a to finish, then for download b24b68f6',
      'pending: 23f7978a queued',
      'done: Command completed successfully',
      'link: https://download.example/f?auth=t',
    ]);
  });

  it('control example: reads power, switches it over, sees the change; again from the state it left', async () => {
    assert.deepEqual((await runExample('control', gw.wsUrl)).lines, ['power is false', 'exec returned true', 'power is true']);
    assert.deepEqual((await runExample('control', gw.wsUrl)).lines, ['power is true', 'exec returned false', 'power is false']);
  });

  it('the README shows both examples as they are in sdk/examples', () => {
    const readme = readFileSync('README.md', 'utf8');
    for (const name of ['notify', 'control']) {
      const body = readFileSync(`sdk/examples/${name}.ts`, 'utf8').trim();
      assert.ok(readme.includes(body), `README.md holds sdk/examples/${name}.ts`);
    }
  });
});
