import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));

/** Runs the real entry point on a config file; resolves with its exit code and stderr. */
function startWith(config: unknown): Promise<{ code: number | null; stderr: string }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ port: 0, host: '127.0.0.1', logLevel: 'silent', ...(config as object) }));
  const child = spawn(process.execPath, [resolve('dist/src/main.js')], {
    env: { ...process.env, PORT: '', AMQP_URL: '', REDIS_URL: '', SWITCHBOARD_CONFIG: file },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('exit', (code) => done({ code, stderr })));
}

describe('bad control configuration is refused at start', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every cross-entry problem, each naming the entry, and exits with 2', async () => {
    const { code, stderr } = await startWith({
      control: {
        zones: [{ id: 'zone-a', name: 'A' }],
        systems: [
          { id: 'sys-ok', name: 'OK', zones: ['zone-a'], modules: ['mod-a'] },
          { id: 'sys-x', name: 'X', zones: ['zone-nowhere'], modules: ['mod-y'] },
        ],
        modules: [
          { id: 'mod-a', driver: 'display' },
          { id: 'mod-a', driver: 'lights' },
          { id: 'mod-b', driver: 'toaster' },
          { id: 'mod-c', driver: 'lights', settings: { scenes: { bright: 500 } } },
          { id: 'mod-d', driver: 'display', settings: { inputs: 'hdmi1' } },
        ],
      },
    });
    assert.equal(code, 2, stderr);
    const expected = [
      'control.modules[1] (mod-a): duplicate id (also control.modules[0])',
      'control.modules[2] (mod-b): unknown driver "toaster" (known: display, lights',
      'control.modules[3] (mod-c): settings.scenes.bright: Too big: expected number to be <=100',
      'control.modules[4] (mod-d): settings.inputs: Invalid input: expected array, received string',
      'control.systems[1] (sys-x): zone "zone-nowhere" is not defined',
      'control.systems[1] (sys-x): module "mod-y" is not defined',
    ];
    for (const line of expected) assert.ok(stderr.includes(line), `missing "${line}" in:\n${stderr}`);
    assert.doesNotMatch(stderr, /sys-ok/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  it('names the key of a malformed entry', async () => {
    const { code, stderr } = await startWith({ control: { systems: [{ id: 'sys-x', modules: 'mod-a' }] } });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /control\.systems\.0\.name: /);
    assert.match(stderr, /control\.systems\.0\.modules: /);
  });

  it('refuses a misspelt key, naming it and the nearest known key', async () => {
    const { code, stderr } = await startWith({ prot: 19708, notify: { joinDeadlineMS: 5000 } });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /prot: unknown key \(did you mean "port"\?\)/);
    assert.match(stderr, /notify\.joinDeadlineMS: unknown key \(did you mean "joinDeadlineMs"\?\)/);
  });

  it('refuses a duplicate system id', async () => {
    const { code, stderr } = await startWith({
      control: {
        systems: [
          { id: 'sys-a', name: 'A' },
          { id: 'sys-a', name: 'B' },
        ],
      },
    });
    assert.equal(code, 2, stderr);
    assert.match(stderr, /control\.systems\[1\] \(sys-a\): duplicate id \(also control\.systems\[0\]\)/);
  });
});
