import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-logs-'));

/** Starts `node dist/src/main.js` with a small config, returns its stdout lines up to "listening", stops it. */
async function linesUntilListening(env: Record<string, string>): Promise<string[]> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ port: 0, host: '127.0.0.1', nodeId: 'log-format-node', apiKeys: [], control: {} }));
  const child = spawn(process.execPath, [resolve('dist/src/main.js')], {
    env: { ...process.env, PORT: '', AMQP_URL: '', REDIS_URL: '', LOG_FORMAT: '', ...env, SWITCHBOARD_CONFIG: file },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((done) => child.on('exit', done));
  const lines: string[] = [];
  try {
    for await (const line of createInterface({ input: child.stdout! })) {
      lines.push(line);
      if (line.includes('listening')) break;
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return lines;
}

describe('log format', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('JSON lines when stdout is not a terminal', async () => {
    const lines = await linesUntilListening({});
    const listening = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    assert.equal(listening.msg, 'listening');
    assert.equal(listening.node, 'log-format-node');
  });

  it('readable lines with LOG_FORMAT=pretty, the node id leading', async () => {
    const lines = await linesUntilListening({ LOG_FORMAT: 'pretty' });
    assert.match(lines.at(-1)!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[log-format-node\] listening /);
    assert.throws(() => JSON.parse(lines.at(-1)!));
  });

  it('LOG_FORMAT=json forces JSON', async () => {
    const lines = await linesUntilListening({ LOG_FORMAT: 'json' });
    assert.equal((JSON.parse(lines.at(-1)!) as Record<string, unknown>).msg, 'listening');
  });
});
