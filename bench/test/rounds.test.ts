import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeAck } from '../lib/ack-targets.js';
import { byRound, formatSpread, metCount, spreadOf } from '../lib/rounds.js';

describe('bench rounds', () => {
  it('takes the median of the rounds that have a value, the middle two averaged for an even count', () => {
    assert.deepEqual(spreadOf([1.79, 1.33, 1.57]), { median: 1.57, min: 1.33, max: 1.79, count: 3 });
    assert.deepEqual(spreadOf([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, count: 4 });
    assert.deepEqual(spreadOf([null, 2, undefined, Number.NaN]), { median: 2, min: 2, max: 2, count: 1 });
    assert.equal(spreadOf([]), undefined);
    assert.equal(spreadOf([null]), undefined);
  });

  it('counts verdicts only where a round judged one', () => {
    assert.deepEqual(metCount([true, false, null, true, undefined]), { met: 2, judged: 3 });
    assert.deepEqual(metCount([]), { met: 0, judged: 0 });
  });

  it('groups rows by round, keeping an empty round empty', () => {
    const rows = [
      { round: 2, name: 'b1' },
      { round: 1, name: 'a1' },
      { round: 2, name: 'b2' },
    ];
    assert.deepEqual(
      byRound(rows, 3).map((round) => round.map((r) => r.name)),
      [['a1'], ['b1', 'b2'], []],
    );
  });

  it('writes the median with the range beside it when there were several rounds', () => {
    assert.equal(formatSpread(spreadOf([1.5, 1.25, 2])), '1.50 (1.25 to 2.00)');
    assert.equal(formatSpread(spreadOf([0.8]), 3), '0.800');
    assert.equal(formatSpread(undefined), '—');
  });
});

describe('bench ack targets', () => {
  it('judges the ratio at max rate and the p99 at 5k/s, nothing else', () => {
    assert.deepEqual(judgeAck('notify-1000-transient-max-ack', 0.81, 40), { ratioMet: true, p99Met: null });
    assert.deepEqual(judgeAck('notify-1000-transient-max-ack', 0.79, 0), { ratioMet: false, p99Met: null });
    assert.deepEqual(judgeAck('notify-1000-transient-5k-ack', 0.5, 1), { ratioMet: null, p99Met: true });
    assert.deepEqual(judgeAck('notify-1000-transient-5k-ack', 1, 1.01), { ratioMet: null, p99Met: false });
    assert.deepEqual(judgeAck('notify-1000-transient-5k-ack', null, undefined), { ratioMet: null, p99Met: null });
  });
});
