import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { stop } from '../lib/children.js';
import { describeFailure, failure, inStep } from '../lib/worker-failure.js';

/** The bench's process handling (bench/lib): what turned complete measurements into failed rows. */
describe('bench worker processes', () => {
  it('stops a worker although a send to it failed with EPIPE meanwhile', async () => {
    // An idle process with an IPC channel, like a bench worker.
    const child = spawn(process.execPath, ['-e', "process.on('message', () => {}); setInterval(() => {}, 1000)"], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    child.on('error', () => {}); // as forkWorker does
    await once(child, 'spawn');
    const stopped = stop(child, 5_000);
    // What Node emits when an IPC send races the process's exit (a progress relay to the exiting publisher).
    child.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }));
    await stopped;
    assert.equal(child.signalCode, 'SIGTERM');
  });

  it('names the worker, the step and the error code of a failure', async () => {
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    const err = await inStep('amqp.connect', () => Promise.reject(epipe)).catch((e: unknown) => e);
    const report = failure('publisher', err);
    assert.equal(report.step, 'amqp.connect');
    assert.equal(report.code, 'EPIPE');
    assert.match(describeFailure(report), /^publisher failed at amqp\.connect: write EPIPE \(EPIPE\) at \d{4}-/);
    // An error outside any step keeps the step the caller knows.
    assert.equal(failure('consumer', new Error('boom'), 'start').step, 'start');
  });
});
