import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseBenchArgs } from '../lib/args.js';

/** `npm run bench -- <args>` runs `node dist/bench/run.js <args>`: a typo must never start the 15-minute run. */
function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/bench/run.js', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('bench arguments', () => {
  it('--help prints the usage and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const run = await bench([flag]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Usage: npm run bench/);
      assert.match(run.stdout, /--scenario <name>/);
    }
  });

  it('refuses unknown options, systems and scenarios with exit 2 before measuring anything', async () => {
    for (const [args, message] of [
      [['--quik'], /Unknown option '--quik'/],
      [['--systems', 'gateway,kafka'], /--systems: unknown kafka/],
      [['--scenario', 'notify-7'], /no scenario "notify-7"/],
      [['extra'], /positional/],
      [['--gateway-node-flags=--max-semi-space-size=32 rm'], /--gateway-node-flags: each must look like --name or --name=value, not rm/],
      [['--gateway-node-flags', '--max-semi-space-size=32'], /ambiguous/],
      [['--rounds', '0'], /--rounds: a whole number from 1 to 20, not 0/],
      [['--rounds', '2.5'], /--rounds: a whole number from 1 to 20, not 2.5/],
    ] as Array<[string[], RegExp]>) {
      const run = await bench(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stdout, /^bench bench/m, 'no run started');
    }
  });

  it('passes --gateway-node-flags on as separate flags', () => {
    assert.deepEqual(parseBenchArgs(['--gateway-node-flags=--max-semi-space-size=32  --single-threaded-gc']).gatewayNodeFlags, [
      '--max-semi-space-size=32',
      '--single-threaded-gc',
    ]);
    assert.deepEqual(parseBenchArgs([]).gatewayNodeFlags, []);
  });

  it('measures one round unless --rounds says more', () => {
    assert.equal(parseBenchArgs([]).rounds, 1);
    assert.equal(parseBenchArgs(['--rounds', '5']).rounds, 5);
  });
});
