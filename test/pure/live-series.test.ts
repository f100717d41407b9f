import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketDelta, histogramQuantile } from '../../src/observability/histogram-quantile.js';
import { LiveSampler, LiveSeries, type Reading } from '../../src/observability/live-series.js';
import { FakeClock } from '../helpers/fake-clock.js';

const bounds = [0.001, 0.01, 0.1, Infinity];
const buckets = (counts: number[]) => bounds.map((le, i) => ({ le, count: counts[i]! }));
const reading = (over: Partial<Reading> = {}): Reading => ({ sockets: {}, messagesIn: 0, messagesOut: 0, execs: 0, latency: buckets([0, 0, 0, 0]), ...over });

describe('histogramQuantile (as Prometheus histogram_quantile)', () => {
  it('interpolates inside the bucket the rank falls in, from 0 for the first bucket', () => {
    // 100 observations: 50 ≤ 1 ms, 40 in (1, 10] ms, 10 in (10, 100] ms.
    const h = buckets([50, 90, 100, 100]);
    assert.equal(histogramQuantile(0.5, h), 0.001);
    assert.ok(Math.abs(histogramQuantile(0.25, h)! - 0.0005) < 1e-12);
    assert.ok(Math.abs(histogramQuantile(0.7, h)! - (0.001 + 0.009 * (20 / 40))) < 1e-12);
    assert.ok(Math.abs(histogramQuantile(0.99, h)! - (0.01 + 0.09 * (9 / 10))) < 1e-12);
  });

  it('answers the highest finite bound for a rank in the +Inf bucket, and null without observations', () => {
    assert.equal(histogramQuantile(0.99, buckets([0, 0, 1, 10])), 0.1);
    assert.equal(histogramQuantile(0.5, buckets([0, 0, 0, 0])), null);
    assert.equal(histogramQuantile(0.5, []), null);
  });

  it('bucketDelta keeps only the observations made between two readings', () => {
    assert.deepEqual(bucketDelta(buckets([5, 9, 10, 10]), buckets([5, 5, 5, 5])), buckets([0, 4, 5, 5]));
  });
});

describe('LiveSeries', () => {
  it('turns cumulative readings into rates per second and latency percentiles of each interval alone', () => {
    const series = new LiveSeries(2_000, 10);
    series.record(10_000, reading({ messagesIn: 100, messagesOut: 100, latency: buckets([100, 100, 100, 100]) }));
    assert.equal(series.snapshot().t.length, 0, 'the first reading is only the baseline');
    // In 2 s: 10 in, 20 out (two sockets), 4 execs; every new delivery took between 10 and 100 ms. The 100
    // earlier fast deliveries must not pull the percentiles down.
    series.record(12_000, reading({ sockets: { notify: 2, control: 1 }, messagesIn: 110, messagesOut: 120, execs: 4, latency: buckets([100, 100, 120, 120]) }));
    const snap = series.snapshot();
    assert.deepEqual(snap.t, [12]);
    assert.deepEqual(snap.sockets, { control: [1], notify: [2] });
    assert.deepEqual([snap.messagesIn, snap.messagesOut, snap.execs], [[5], [10], [2]]);
    assert.ok(Math.abs(snap.latencyP50Ms[0]! - 55) < 1e-9, `p50 ${snap.latencyP50Ms[0]}`);
    assert.ok(Math.abs(snap.latencyP99Ms[0]! - 99.1) < 1e-9, `p99 ${snap.latencyP99Ms[0]}`);
  });

  it('shows no latency for an interval without deliveries, treats a counter reset as a restart, and keeps only the window', () => {
    const series = new LiveSeries(1_000, 3);
    series.record(0, reading({ messagesIn: 50 }));
    series.record(1_000, reading({ messagesIn: 7 }));
    assert.deepEqual(series.snapshot().messagesIn, [7]);
    assert.deepEqual(series.snapshot().latencyP99Ms, [null]);
    for (let i = 2; i <= 5; i++) series.record(i * 1_000, reading({ messagesIn: 7 + i }));
    assert.deepEqual(series.snapshot().t, [3, 4, 5]);
    assert.deepEqual(series.snapshot().messagesIn, [1, 1, 1]);
  });
});

describe('LiveSampler', () => {
  it('reads every interval from start to stop, one reading at a time', async () => {
    const clock = new FakeClock(0);
    let reads = 0;
    let readDone: () => void = () => {};
    const sampler = new LiveSampler({
      clock,
      intervalMs: 1_000,
      windowMs: 60_000,
      read: async () => {
        reads++;
        queueMicrotask(() => readDone());
        return reading({ messagesIn: reads * 10 });
      },
      onError: (err) => assert.fail(String(err)),
    });
    const nextRead = () => new Promise<void>((resolve) => (readDone = resolve));
    assert.equal(clock.pending, 0, 'nothing runs before start');
    let read = nextRead();
    sampler.start();
    await read;
    await new Promise(setImmediate);
    for (let i = 0; i < 3; i++) {
      read = nextRead();
      clock.advance(1_000);
      await read;
      await new Promise(setImmediate);
    }
    assert.equal(reads, 4);
    assert.deepEqual(sampler.series.snapshot().messagesIn, [10, 10, 10]);
    sampler.stop();
    assert.equal(clock.pending, 0, 'no timer left after stop');
  });

  it('a stop and start while a reading is in flight leaves one sampling loop, not two', async () => {
    const clock = new FakeClock(0);
    let reads = 0;
    const gates: Array<() => void> = [];
    const sampler = new LiveSampler({
      clock,
      intervalMs: 1_000,
      windowMs: 60_000,
      read: () => {
        reads++;
        return new Promise<Reading>((resolve) => gates.push(() => resolve(reading())));
      },
      onError: (err) => assert.fail(String(err)),
    });
    sampler.start();
    sampler.stop();
    sampler.start();
    for (const open of gates.splice(0)) open();
    await new Promise(setImmediate);
    assert.equal(clock.pending, 1, 'one timer: the first loop ended with its reading');
    clock.advance(1_000);
    assert.equal(reads, 3, 'two readings at the starts, one at the next interval');
    sampler.stop();
    for (const open of gates.splice(0)) open();
    await new Promise(setImmediate);
    assert.equal(clock.pending, 0);
  });
});
