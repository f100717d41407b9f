import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareFleet, copiesPerMessage, joinPlan, oneNodeCounterpart } from '../lib/fleet.js';

describe('bench two-node scenarios', () => {
  const tokens = Array.from({ length: 10 }, (_, i) => `t${i}`);

  it('joins every profile once on one node, on both nodes when all are shared', () => {
    assert.deepEqual(joinPlan(['a', 'b'], ['ws://n1'], 1), [
      { url: 'ws://n1', token: 'a' },
      { url: 'ws://n1', token: 'b' },
    ]);
    const both = joinPlan(tokens, ['ws://n1', 'ws://n2'], 1);
    assert.equal(both.length, 20);
    for (const token of tokens) assert.deepEqual(both.filter((j) => j.token === token).map((j) => j.url), ['ws://n1', 'ws://n2']);
    assert.equal(copiesPerMessage(both, tokens.length), 2);
  });

  it('mixed: a fifth of the profiles on both nodes, the others spread over the two', () => {
    const plan = joinPlan(tokens, ['ws://n1', 'ws://n2'], 5);
    const nodesOf = (token: string) => plan.filter((j) => j.token === token).map((j) => j.url);
    assert.deepEqual(tokens.filter((t) => nodesOf(t).length === 2), ['t0', 't5']);
    const single = tokens.filter((t) => nodesOf(t).length === 1).map((t) => nodesOf(t)[0]);
    assert.equal(single.filter((u) => u === 'ws://n1').length, 4);
    assert.equal(single.filter((u) => u === 'ws://n2').length, 4);
    assert.equal(copiesPerMessage(plan, tokens.length), 1.2);
    assert.throws(() => joinPlan(tokens, [], 1), /no gateway URL/);
    assert.throws(() => joinPlan(tokens, ['ws://n1'], 0), /positive integer/);
  });

  it('pairs each two-node row with the one-node row of the same run and judges the targets', () => {
    assert.equal(oneNodeCounterpart('notify-1000-2nodes-transient-max'), 'notify-1000-transient-max');
    assert.equal(oneNodeCounterpart('notify-1000-2nodes-mixed-transient-max'), 'notify-1000-transient-max');
    assert.equal(oneNodeCounterpart('notify-1000-transient-max'), undefined);
    const rows = [
      { scenario: 'notify-1000-transient-max', deliveriesPerSecond: 10_000, p99Ms: 5, cpuMicrosPerDelivery: 40 },
      { scenario: 'notify-1000-2nodes-transient-max', deliveriesPerSecond: 6_900, p99Ms: 9, cpuMicrosPerDelivery: 59 },
      { scenario: 'notify-1000-transient-1k', deliveriesPerSecond: 1_000, p99Ms: 1, cpuMicrosPerDelivery: 50 },
      { scenario: 'notify-1000-2nodes-transient-1k', deliveriesPerSecond: 2_000, p99Ms: 2.5, cpuMicrosPerDelivery: 80 },
      { scenario: 'notify-1000-2nodes-persistent-max', deliveriesPerSecond: 5_000, p99Ms: 5, cpuMicrosPerDelivery: null },
    ];
    const [max, fixed, ...rest] = compareFleet(rows);
    assert.equal(rest.length, 0, 'a two-node row without its one-node row is left out');
    assert.equal(max!.oneNode, 'notify-1000-transient-max');
    assert.equal(max!.throughputRatio, 0.69);
    assert.equal(max!.throughputMet, false);
    assert.equal(max!.p99Met, null, 'latency is judged at the fixed rate only');
    assert.equal(max!.cpuMet, true);
    assert.equal(fixed!.throughputMet, null);
    assert.equal(fixed!.p99DiffMs, 1.5);
    assert.equal(fixed!.p99Met, true);
    assert.equal(fixed!.cpuRatio, 1.6);
    assert.equal(fixed!.cpuMet, false);
  });
});
