import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';

/** The probe starts processes and declares 1,000 queues: a mistyped argument must stop it before that. */
function probe(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/bench/probes/relay-topologies.js', ...args], { timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
    });
  });
}

describe('relay topologies probe arguments', () => {
  it('refuses an unknown topology or a measurement time out of range with exit 2 and its usage', async () => {
    for (const args of [['star'], ['cc', '--seconds', '0'], ['--seconds', 'ten'], ['--secs', '5'], ['--rate', '0'], ['--rate', 'fast'], ['--lanes', '0'], ['--persistent=yes']]) {
      const run = await probe(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^usage: relay-topologies\.js \[direct\|self\|cc\|ccnode \.\.\.\] \[--seconds 1\.\.600\] \[--rate 1\.\.100000\] \[--gateway-queues\] \[--gateway-copies\] \[--lanes 1\.\.64\] \[--persistent\]/);
    }
  });
});
